// Reading the evaluation data files: plain text or bzip2-compressed (name ending in .bz2), CRLF turned into LF.
#pragma once

#include <string>

namespace hpcinfer::eval {

// The whole file as text with "\r\n" replaced by "\n". Throws std::runtime_error naming the path when the file
// cannot be read or decompressed (or, for .bz2, when this build has no libbz2).
std::string read_text_file(const std::string& path);

}  // namespace hpcinfer::eval
