#include "core/tokenizer/text_util.hpp"

#include <cstdio>
#include <unordered_map>

namespace hpcinfer::tok {

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

namespace {
bool printable_self(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255); }

std::array<std::string, 256> make_byte_map() {
  std::array<std::string, 256> m;
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) append_utf8(m[b], printable_self(b) ? static_cast<uint32_t>(b) : next++);
  return m;
}
}  // namespace

const std::array<std::string, 256>& byte_to_unicode() {
  static const std::array<std::string, 256> m = make_byte_map();
  return m;
}

std::string bytes_to_unicode(std::string_view bytes) {
  const auto& m = byte_to_unicode();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) out += m[c];
  return out;
}

bool unicode_to_bytes(std::string_view text, std::string& out) {
  static const std::unordered_map<std::string, char> inv = [] {
    std::unordered_map<std::string, char> r;
    const auto& m = byte_to_unicode();
    for (int b = 0; b < 256; ++b) r[m[b]] = static_cast<char>(b);
    return r;
  }();
  for (size_t i = 0; i < text.size();) {
    size_t n = utf8_len(static_cast<unsigned char>(text[i]));
    auto it = inv.find(std::string(text.substr(i, n)));
    if (it == inv.end()) return false;
    out += it->second;
    i += n;
  }
  return true;
}

int parse_byte_piece(std::string_view p) {
  if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  int hi = hex(p[3]), lo = hex(p[4]);
  return (hi < 0 || lo < 0) ? -1 : hi * 16 + lo;
}

std::string byte_piece(unsigned char b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "<0x%02X>", b);
  return buf;
}

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (true) {
    size_t hit = s.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(pos, hit - pos));
    out.append(to);
    pos = hit + from.size();
  }
  out.append(s.substr(pos));
  return out;
}

}  // namespace hpcinfer::tok
