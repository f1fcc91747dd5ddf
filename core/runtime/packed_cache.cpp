#include "core/runtime/packed_cache.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace hpcinfer {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr char kMagic[] = "hpcinfer-packed-1\n";
constexpr size_t kHeaderBytes = 48;  // magic padded to 32 bytes, the index's u64 offset and length
constexpr size_t kAlign = 4096;

// Size, modification time and inode of the model's file, or of every regular file in its directory (sorted).
std::string model_identity(const std::string& model_path) {
  std::vector<fs::path> files;
  const fs::path p = fs::absolute(model_path).lexically_normal();
  if (fs::is_directory(p)) {
    for (const auto& e : fs::directory_iterator(p))
      if (e.is_regular_file() && e.path().string().find(".hpk") == std::string::npos)  // a cache kept beside the model
        files.push_back(e.path());
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(p);
  }
  std::string id;
  for (const fs::path& f : files) {
    struct stat st{};
    if (::stat(f.c_str(), &st) != 0) continue;
    id += f.string() + " " + std::to_string(st.st_size) + " " + std::to_string(st.st_mtim.tv_sec) + "." +
          std::to_string(st.st_mtim.tv_nsec) + " " + std::to_string(st.st_ino) + "\n";
  }
  return id;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void write_all(int fd, const void* data, size_t bytes, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t w = ::write(fd, p, std::min<size_t>(bytes, size_t(1) << 30));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) throw std::runtime_error(path + ": " + std::strerror(errno));
    p += w;
    bytes -= size_t(w);
  }
}

}  // namespace

std::string PackedCache::matrix_name(const std::string& tensor, Range rows, Range cols) {
  return tensor + " rows [" + std::to_string(rows.begin) + ", " + std::to_string(rows.end) + ") cols [" +
         std::to_string(cols.begin) + ", " + std::to_string(cols.end) + ")";
}

PackedCache::PackedCache(const std::string& dir, const std::string& model_path, const WeightFormat& fmt,
                         const RankPlan& plan)
    : dir_(dir), fmt_(fmt) {
  const std::string format_key = fmt.image_key();
  if (dir.empty() || format_key.empty()) return;
  key_ = std::string(kMagic) + "model:\n" + model_identity(model_path) + "weights: " + format_key + "\nshards:\n";
  for (const WeightShard& s : plan.shards) key_ += matrix_name(s.tensor, s.rows, s.cols) + "\n";
  char name[32];
  std::snprintf(name, sizeof name, "%016llx.hpk", static_cast<unsigned long long>(std::hash<std::string>{}(key_)));
  file_ = (fs::path(dir) / name).string();
  open_existing();
}

PackedCache::~PackedCache() {
  if (fd_ >= 0) {  // never saved (the load failed): no half-written file stays behind
    ::close(fd_);
    std::error_code ec;
    fs::remove(tmp_, ec);
  }
}

void PackedCache::open_existing() {
  const auto t0 = std::chrono::steady_clock::now();
  const int fd = ::open(file_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;  // not written yet: a miss
  auto miss = [&](const std::string& why) {
    std::fprintf(stderr, "weights: packed-weight cache %s %s: packing again\n", file_.c_str(), why.c_str());
    index_.clear();
    map_.reset();
  };
  struct stat st{};
  if (::fstat(fd, &st) != 0 || size_t(st.st_size) < kHeaderBytes) {
    ::close(fd);
    return miss("is shorter than its header");
  }
  map_bytes_ = size_t(st.st_size);
  void* base = ::mmap(nullptr, map_bytes_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (base == MAP_FAILED) return miss(std::string("cannot be mapped: ") + std::strerror(errno));
  const size_t bytes = map_bytes_;
  map_ = std::shared_ptr<const void>(base, [bytes](const void* p) { ::munmap(const_cast<void*>(p), bytes); });
  const char* b = static_cast<const char*>(base);
  if (std::memcmp(b, kMagic, sizeof kMagic - 1) != 0) return miss("is not a packed-weight file (no magic)");
  uint64_t index_at = 0, index_bytes = 0;
  std::memcpy(&index_at, b + 32, 8);
  std::memcpy(&index_bytes, b + 40, 8);
  if (index_at > map_bytes_ || index_bytes > map_bytes_ - index_at) return miss("is truncated (its index runs past the end)");
  json index;
  try {
    index = json::parse(b + index_at, b + index_at + index_bytes);
    if (index.at("key").get<std::string>() != key_) return miss("was written for another model, plugin or plan");
    for (const auto& [name, regions] : index.at("matrices").items()) {
      std::vector<HostBytes> parts;
      for (const auto& r : regions) {
        if (!r.is_array() || r.size() != 2 || !r[0].is_number_unsigned() || !r[1].is_number_unsigned())
          return miss("is damaged (matrix " + name + " has a region that is not [offset, bytes])");
        const uint64_t off = r[0].get<uint64_t>(), n = r[1].get<uint64_t>();
        if (off % kAlign != 0 || off > map_bytes_ || n > map_bytes_ - off)
          return miss("is truncated or damaged (matrix " + name + " lies outside its " + std::to_string(map_bytes_) +
                      " bytes)");
        parts.push_back({b + off, size_t(n)});
      }
      index_[name] = std::move(parts);
    }
  } catch (const std::exception& e) {
    return miss(std::string("has an unreadable index (") + e.what() + ")");
  }
  // Bring the pages in now (timed as the load's read): decode would otherwise fault them in during the first steps.
#ifdef MADV_POPULATE_READ
  ::madvise(base, map_bytes_, MADV_POPULATE_READ);
#else
  ::madvise(base, map_bytes_, MADV_WILLNEED);
#endif
  read_s_ += seconds_since(t0);
}

std::unique_ptr<PackedMatrix> PackedCache::find(const std::string& name, Range rows, Range cols, Backend& be) {
  if (!map_) return nullptr;
  const auto it = index_.find(name);
  if (it == index_.end()) return nullptr;
  try {
    auto m = fmt_.adopt(it->second, rows, cols, be, map_);
    if (m) adopted_.push_back(name);
    return m;
  } catch (const std::invalid_argument& e) {  // a region of the wrong size: this file is not what the key says
    std::fprintf(stderr, "weights: packed-weight cache %s: %s: packing %s again\n", file_.c_str(), e.what(), name.c_str());
    return nullptr;
  }
}

void PackedCache::add(const std::string& name, const PackedMatrix& m) {
  if (!enabled() || failed_) return;
  const std::vector<HostBytes> parts = m.image();
  if (parts.empty()) {  // a matrix this format cannot save: no file rather than one that lacks it
    failed_ = true;
    return;
  }
  append(name, parts);
}

// Regions go to the temporary file as they are packed (no matrix has to outlive the load); the index goes last.
void PackedCache::append(const std::string& name, const std::vector<HostBytes>& parts) {
  try {
    if (fd_ < 0) {
      std::error_code ec;
      fs::create_directories(dir_, ec);
      tmp_ = file_ + ".tmp." + std::to_string(::getpid());
      fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd_ < 0) throw std::runtime_error(tmp_ + ": " + std::strerror(errno));
      const std::vector<char> header(kAlign, 0);  // filled in by save()
      write_all(fd_, header.data(), header.size(), tmp_);
      written_ = kAlign;
    }
    const auto t0 = std::chrono::steady_clock::now();
    json regions = json::array();
    static const std::vector<char> zeros(kAlign, 0);
    for (const HostBytes& h : parts) {
      regions.push_back({written_, h.bytes});
      write_all(fd_, h.data, h.bytes, tmp_);
      const size_t pad = (kAlign - h.bytes % kAlign) % kAlign;
      write_all(fd_, zeros.data(), pad, tmp_);
      written_ += h.bytes + pad;
    }
    matrices_[name] = regions;
    write_s_ += seconds_since(t0);
  } catch (const std::exception& e) {
    abandon(e.what());
  }
}

void PackedCache::abandon(const std::string& why) {
  std::fprintf(stderr, "weights: cannot write the packed-weight cache %s: %s (the run goes on)\n", file_.c_str(),
               why.c_str());
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  std::error_code ec;
  if (!tmp_.empty()) fs::remove(tmp_, ec);
  failed_ = true;
}

double PackedCache::save() {
  if (fd_ < 0 || failed_) return 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (const std::string& name : adopted_)  // a partial hit: what came from the old file goes into the new one
    if (!matrices_.contains(name)) append(name, index_.at(name));
  if (failed_) return 0;
  try {
    const std::string text = json{{"key", key_}, {"matrices", matrices_}}.dump();
    write_all(fd_, text.data(), text.size(), tmp_);
    char header[kHeaderBytes] = {};
    std::memcpy(header, kMagic, sizeof kMagic - 1);
    const uint64_t index_at = written_, index_bytes = text.size();
    std::memcpy(header + 32, &index_at, 8);
    std::memcpy(header + 40, &index_bytes, 8);
    if (::pwrite(fd_, header, sizeof header, 0) != ssize_t(sizeof header)) throw std::runtime_error(tmp_ + ": " + std::strerror(errno));
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) throw std::runtime_error(tmp_ + ": " + std::strerror(errno));
    fs::rename(tmp_, file_);
  } catch (const std::exception& e) {
    abandon(e.what());
    return 0;
  }
  return write_s_ + seconds_since(t0);
}

}  // namespace hpcinfer
