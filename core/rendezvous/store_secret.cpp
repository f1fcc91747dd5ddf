#include "core/rendezvous/store_secret.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace fs = std::filesystem;

namespace hpcinfer {
namespace {

std::string read_secret_file(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) throw std::runtime_error(p.string() + ": cannot read the store secret: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw std::runtime_error(p.string() + ": the store secret is not a regular file");
  if (st.st_mode & (S_IRWXG | S_IRWXO))
  {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%o", unsigned(st.st_mode & 0777));
    throw std::runtime_error(p.string() + ": the store secret is readable by others (mode " + mode + "): chmod 600 it");
  }
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  if (s.size() < 16) throw std::runtime_error(p.string() + ": the store secret is shorter than 16 characters");
  return s;
}

// ~/.hpcinfer/store_secret, created atomically when absent (a temporary file linked into place: every rank that races
// to create it ends up reading the same one).
std::string home_secret() {
  const char* home = std::getenv("HOME");
  if (!home || !*home) throw std::runtime_error("no store secret: set HPCINFER_STORE_SECRET (HOME is not set)");
  const fs::path dir = fs::path(home) / ".hpcinfer", file = dir / "store_secret";
  if (!fs::exists(file)) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    ::chmod(dir.c_str(), 0700);
    const fs::path tmp = dir / ("store_secret.tmp." + std::to_string(::getpid()));
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error(tmp.string() + ": cannot create the store secret: " + std::strerror(errno));
    const std::string s = new_store_secret() + "\n";
    const bool ok = ::write(fd, s.data(), s.size()) == ssize_t(s.size());
    ::close(fd);
    if (ok) (void)::link(tmp.c_str(), file.c_str());  // fails harmlessly when another rank linked first
    ::unlink(tmp.c_str());
  }
  return read_secret_file(file);
}

}  // namespace

std::string store_secret() {
  if (const char* s = std::getenv("HPCINFER_STORE_SECRET"); s && *s) {
    if (std::strlen(s) < 16) throw std::runtime_error("HPCINFER_STORE_SECRET is shorter than 16 characters");
    return s;
  }
  if (const char* f = std::getenv("HPCINFER_STORE_SECRET_FILE"); f && *f) return read_secret_file(f);
  return home_secret();
}

void random_bytes(uint8_t* out, size_t n) {
  if (RAND_bytes(out, int(n)) != 1) throw std::runtime_error("OpenSSL RAND_bytes failed: no random bytes");
}

std::string new_store_secret() {
  uint8_t b[32];
  random_bytes(b, sizeof b);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (uint8_t x : b) s += {hex[x >> 4], hex[x & 15]};
  return s;
}

std::array<uint8_t, 32> store_proof(const std::string& secret, const uint8_t* nonce, size_t n) {
  std::string msg = "hpcinfer-store/1";
  msg.append(reinterpret_cast<const char*>(nonce), n);
  std::array<uint8_t, 32> out{};
  unsigned len = 0;
  if (!HMAC(EVP_sha256(), secret.data(), int(secret.size()), reinterpret_cast<const uint8_t*>(msg.data()), msg.size(),
            out.data(), &len) || len != out.size())
    throw std::runtime_error("OpenSSL HMAC-SHA256 failed");
  return out;
}

bool same_proof(const std::array<uint8_t, 32>& a, const std::array<uint8_t, 32>& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace hpcinfer
