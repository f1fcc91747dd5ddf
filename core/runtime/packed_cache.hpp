// The packed-weight cache (plugins.weights_cache: a directory; off when empty). Packing reorders every weight into the
// kernels' panels (and quantizes it for int8 / int4): seconds per GB, and fresh memory for the copy. With a cache the
// first load of a (model files, weights plugin and options, rank's shards) combination writes the packed bytes to one
// file; later loads map that file read-only and hand its regions to WeightFormat::adopt: no packing, no copy, the
// pages shared with the page cache (and with other processes of the same plan), as llama.cpp maps a GGUF.
//
// File DIR/<16 hex digits>.hpk, named by std::hash of its key; the key itself is stored and compared, so a collision or
// a changed model file (size, modification time, inode) reads as a miss. Layout: "hpcinfer-packed-1\n" padded to 32
// bytes, the u64 little-endian offset and length of the index, the regions from byte 4096 on at 4096-byte offsets,
// then the JSON index {"key", "matrices": {name: [[offset, bytes], ...]}}. Regions are appended to a temporary file as
// they are packed and the file renamed when the load is done: a reader never sees a half-written file.
// A file that is unreadable, truncated or of another key is reported on stderr (naming the file and why) and packed
// again; a write that fails (disk full, no permission) is reported and the run goes on with what it packed.
// The bytes themselves are trusted (as a GGUF's are): no checksum over gigabytes at every load.
// Threading: one caller thread (the stage builder).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hpcinfer/backend.hpp"
#include "hpcinfer/strategy.hpp"
#include "hpcinfer/weight_format.hpp"

namespace hpcinfer {

class PackedCache {
 public:
  // dir "" or a format without image_key(): every call packs, nothing is saved. model_path: the model's file or
  // directory (every regular file in it is part of the key).
  PackedCache(const std::string& dir, const std::string& model_path, const WeightFormat& fmt, const RankPlan& plan);
  ~PackedCache();
  bool enabled() const { return !file_.empty(); }
  const std::string& file() const { return file_; }
  bool hit() const { return map_ != nullptr; }

  // The matrix `name` (a tensor and its ranges) from the mapped file, or nullptr (no file yet, or not in it).
  std::unique_ptr<PackedMatrix> find(const std::string& name, Range rows, Range cols, Backend& be);
  // A matrix packed on this load: its image goes to the file being written.
  void add(const std::string& name, const PackedMatrix& m);
  // Completes the file when this load packed anything (a miss); returns the seconds spent writing it (0: nothing).
  double save();
  // Seconds spent mapping the file and bringing its pages in (part of the load's read time).
  double read_s() const { return read_s_; }

  // "name rows [a, b) cols [c, d)": the index's name of a shard.
  static std::string matrix_name(const std::string& tensor, Range rows, Range cols);

 private:
  void open_existing();
  void append(const std::string& name, const std::vector<HostBytes>& parts);
  void abandon(const std::string& why);
  std::string dir_, key_, file_;
  const WeightFormat& fmt_;
  std::shared_ptr<const void> map_;  // the mapped file (munmap when the last adopted matrix goes)
  size_t map_bytes_ = 0;
  std::map<std::string, std::vector<HostBytes>> index_;  // of the mapped file
  std::vector<std::string> adopted_;                      // names served from it
  // The file being written (a miss): its descriptor, temporary name, bytes so far and index.
  int fd_ = -1;
  std::string tmp_;
  uint64_t written_ = 0;
  nlohmann::json matrices_ = nlohmann::json::object();
  bool failed_ = false;
  double read_s_ = 0, write_s_ = 0;
};

}  // namespace hpcinfer
