// Shared by the libFuzzer harnesses (fuzz/README.md): the input as a file, for loaders that read paths (mmap).
// Files live in a per-process directory on /dev/shm (memory, no disk): one write per execution.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "hpcinfer/tensor.hpp"

namespace hpcinfer::fuzz {

inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::filesystem::path d = std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
    d /= "hpcinfer-fuzz-" + std::to_string(::getpid());
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

// Writes the input to scratch_dir()/name and returns its path.
inline std::string input_file(const std::string& name, const uint8_t* data, size_t size) {
  const std::filesystem::path p = scratch_dir() / name;
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), std::streamsize(size));
  return p.string();
}

// Reads every byte of [p, p + n) so that a view pointing outside its mapping faults under the fuzzer.
inline void touch(const void* p, size_t n) {
  if (!p || n == 0) return;
  const auto* b = static_cast<const volatile uint8_t*>(p);
  volatile uint8_t first = b[0], last = b[n - 1];
  (void)first;
  (void)last;
}

// Reads the first and last byte of every tensor a model source offers (views past the mapping fault here).
template <typename Source>
void touch_tensors(const Source& m) {
  for (const std::string& name : m.tensor_names()) {
    const auto v = m.tensor(name);
    touch(v.data, dtype_row_bytes(v.dtype, v.cols) * size_t(v.rows));
  }
}

}  // namespace hpcinfer::fuzz
