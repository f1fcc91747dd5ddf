// The text `hpcinfer eval ppl` measures when WikiText-2 is not there: a few short stories and plain paragraphs
// written for hpcinfer (public domain, about 3 KB). It is NOT WikiText-2: its perplexities are not comparable to
// published ones, only to each other (same model family, same tokenizer).
#pragma once

#include <string_view>

namespace hpcinfer::eval {

constexpr std::string_view kFallbackCorpusName = "hpcinfer built-in fallback corpus (not WikiText-2)";
std::string_view fallback_corpus();

}  // namespace hpcinfer::eval
