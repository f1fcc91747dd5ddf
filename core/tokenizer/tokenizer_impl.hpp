// Internal to core/tokenizer: the piece -> id index the Tokenizer subclasses share.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>

#include "core/tokenizer/tokenizer.hpp"

namespace hpcinfer {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct Tokenizer::Index {
  // piece text -> id; when a piece occurs twice, the last id wins (as in llama.cpp).
  std::unordered_map<std::string, int, StringHash, std::equal_to<>> ids;
  int find(std::string_view piece) const {
    auto it = ids.find(piece);
    return it == ids.end() ? -1 : it->second;
  }
};

}  // namespace hpcinfer
