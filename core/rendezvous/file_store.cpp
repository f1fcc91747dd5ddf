#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "core/rendezvous/kv_store.hpp"

namespace hpcinfer {
namespace fs = std::filesystem;

FileStore::FileStore(fs::path dir) : dir_(std::move(dir)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec || !fs::is_directory(dir_))
    throw std::runtime_error("file store: cannot create directory " + dir_.string() + ": " + ec.message());
}

// Keys become file names: [A-Za-z0-9_.-] kept, every other byte as %XX (so "a/b" cannot escape the directory).
fs::path FileStore::path_of(const std::string& key) const {
  static const char* hex = "0123456789ABCDEF";
  std::string name = "k_";
  for (unsigned char c : key) {
    if (std::isalnum(c) || c == '_' || c == '-' || c == '.') {
      name += char(c);
    } else {
      name += '%';
      name += hex[c >> 4];
      name += hex[c & 15];
    }
  }
  return dir_ / name;
}

void FileStore::set(const std::string& key, const std::vector<uint8_t>& value) {
  static std::atomic<uint64_t> counter{0};
  fs::path final_path = path_of(key);
  fs::path tmp = dir_ / (".tmp_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + "_" +
                         final_path.filename().string());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(value.data()), std::streamsize(value.size()));
    out.flush();
    if (!out) throw std::runtime_error("file store: cannot write key '" + key + "' to " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, final_path, ec);  // atomic within one directory: readers see the old file or the whole new one
  if (ec) {
    fs::remove(tmp, ec);
    throw std::runtime_error("file store: cannot publish key '" + key + "' as " + final_path.string());
  }
}

bool FileStore::check(const std::string& key) {
  std::error_code ec;
  return fs::exists(path_of(key), ec);
}

std::vector<uint8_t> FileStore::get(const std::string& key, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const fs::path p = path_of(key);
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    std::ifstream in(p, std::ios::binary);
    if (in) return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (std::chrono::steady_clock::now() >= deadline)
      throw std::runtime_error("file store " + dir_.string() + ": key '" + key + "' not set after " +
                               std::to_string(timeout.count()) + " ms");
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
}

}  // namespace hpcinfer
