#include "core/eval/text_file.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#ifdef HPCINFER_HAVE_BZIP2
#include <bzlib.h>
#endif

namespace hpcinfer::eval {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot open");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw std::runtime_error(path + ": read error");
  return ss.str();
}

std::string bunzip2(const std::string& path, const std::string& packed) {
#ifdef HPCINFER_HAVE_BZIP2
  bz_stream z{};
  if (BZ2_bzDecompressInit(&z, 0, 0) != BZ_OK) throw std::runtime_error(path + ": bzip2 init failed");
  std::string out;
  char buf[1 << 16];
  z.next_in = const_cast<char*>(packed.data());
  z.avail_in = static_cast<unsigned>(packed.size());
  int rc = BZ_OK;
  while (rc == BZ_OK) {
    z.next_out = buf;
    z.avail_out = sizeof buf;
    rc = BZ2_bzDecompress(&z);
    out.append(buf, sizeof buf - z.avail_out);
    // Several bzip2 streams back to back (pbzip2 writes them): start the next one.
    if (rc == BZ_STREAM_END && z.avail_in > 0) {
      char* next = z.next_in;
      const unsigned left = z.avail_in;
      BZ2_bzDecompressEnd(&z);
      z = bz_stream{};
      if (BZ2_bzDecompressInit(&z, 0, 0) != BZ_OK) throw std::runtime_error(path + ": bzip2 init failed");
      z.next_in = next;
      z.avail_in = left;
      rc = BZ_OK;
    } else if (rc == BZ_OK && z.avail_in == 0 && z.avail_out != 0) {
      rc = BZ_UNEXPECTED_EOF;
    }
  }
  BZ2_bzDecompressEnd(&z);
  if (rc != BZ_STREAM_END)
    throw std::runtime_error(path + ": not a valid bzip2 file (libbz2 error " + std::to_string(rc) + ")");
  return out;
#else
  (void)packed;
  throw std::runtime_error(path + ": this build has no libbz2 (install libbz2-dev and rebuild, or decompress the "
                           "file with bunzip2 and pass the plain text)");
#endif
}

}  // namespace

std::string read_text_file(const std::string& path) {
  std::string raw = read_bytes(path);
  if (ends_with(path, ".bz2")) raw = bunzip2(path, raw);
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i)
    if (!(raw[i] == '\r' && i + 1 < raw.size() && raw[i + 1] == '\n')) out.push_back(raw[i]);
  return out;
}

}  // namespace hpcinfer::eval
