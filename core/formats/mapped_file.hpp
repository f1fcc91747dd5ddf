// A read-only memory-mapped file. Pages are touched only when read, so a rank that reads only its own tensors
// brings only those into memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace hpcinfer {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws std::runtime_error naming the path
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Pages of a file mapping: populate_pages reads [p, p + bytes) into the mapping (MADV_POPULATE_READ, or a touch per
// page where the kernel lacks it) and returns the seconds it took (the load's "read" time: from the page cache or the
// disk); drop_pages unmaps the whole pages inside the range from this process (MADV_DONTNEED: they stay in the page
// cache, a later read maps them again), so a packed tensor's file pages stop counting in the rank's memory.
// Both only for ranges inside a read-only file mapping.
double populate_pages(const void* p, size_t bytes);
void drop_pages(const void* p, size_t bytes);

}  // namespace hpcinfer
