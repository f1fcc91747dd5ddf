#include "core/formats/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace hpcinfer {

MappedFile::MappedFile(const std::string& path) : path_(path) {
  // O_NONBLOCK: a FIFO or a device given as a model file must get an error, not block the open forever.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw std::runtime_error(path + ": cannot stat: " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw std::runtime_error(path + ": not a regular file (" +
                             (S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO" : "a device or socket") +
                             ")");
  }
  size_ = size_t(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      throw std::runtime_error(path + ": cannot mmap: " + std::strerror(errno));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

namespace {
#ifndef MADV_POPULATE_READ
constexpr int MADV_POPULATE_READ = 22;  // Linux 5.14
#endif
const uintptr_t kPage = uintptr_t(sysconf(_SC_PAGESIZE));
}  // namespace

double populate_pages(const void* p, size_t bytes) {
  if (!p || bytes == 0) return 0.0;
  const auto t0 = std::chrono::steady_clock::now();
  const uintptr_t b = reinterpret_cast<uintptr_t>(p) / kPage * kPage, e = reinterpret_cast<uintptr_t>(p) + bytes;
  if (::madvise(reinterpret_cast<void*>(b), e - b, MADV_POPULATE_READ) != 0) {
    volatile uint8_t sink = 0;
    for (uintptr_t a = reinterpret_cast<uintptr_t>(p); a < e; a += kPage) sink ^= *reinterpret_cast<const uint8_t*>(a);
    (void)sink;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void drop_pages(const void* p, size_t bytes) {
  if (!p || bytes == 0) return;
  const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + kPage - 1) / kPage * kPage;  // whole pages inside only
  const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + bytes) / kPage * kPage;
  if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

}  // namespace hpcinfer
