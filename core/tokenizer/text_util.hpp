// Small text helpers the tokenizers share: UTF-8 lengths, GPT-2's byte<->unicode map, "<0xHH>" pieces.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace hpcinfer::tok {

// Length of the UTF-8 sequence that starts with byte `c` (1 for invalid lead bytes, so text always advances).
inline size_t utf8_len(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) return 2;
  if ((c & 0xF0) == 0xE0) return 3;
  if ((c & 0xF8) == 0xF0) return 4;
  return 1;
}

void append_utf8(std::string& out, uint32_t cp);

// GPT-2 byte-level BPE: each byte b is shown as one printable code point (bytes 33..126, 161..172, 174..255 map
// to themselves, the others to 256, 257, ... in order). Pieces of byte-level vocabularies are in this form.
const std::array<std::string, 256>& byte_to_unicode();
std::string bytes_to_unicode(std::string_view bytes);
// Inverse; returns false if some code point is not in the map (then `out` holds what was decoded so far).
bool unicode_to_bytes(std::string_view text, std::string& out);

// "<0x0A>" -> 10; -1 if `piece` is not of that form.
int parse_byte_piece(std::string_view piece);
std::string byte_piece(unsigned char b);  // 10 -> "<0x0A>"

// Replaces every occurrence of `from` with `to`.
std::string replace_all(std::string_view s, std::string_view from, std::string_view to);

}  // namespace hpcinfer::tok
