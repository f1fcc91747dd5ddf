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

}  // namespace hpcinfer
