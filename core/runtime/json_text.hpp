// The one way hpcinfer writes JSON that may hold model text: compact, and invalid UTF-8 (a token ending inside a
// character, a byte-fallback piece) replaced by U+FFFD instead of nlohmann's exception.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace hpcinfer {

inline std::string json_text(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace hpcinfer
