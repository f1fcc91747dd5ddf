// Regex pre-tokenizer for byte-level BPE: splits text into words before merging. Several regexes apply in turn,
// each splitting every piece the previous ones left into its matches and the gaps between them (llama.cpp's
// unicode_regex_split, HF's Split(behavior=Isolated)). PCRE2, UTF + UCP mode, JIT-compiled once at construction;
// invalid UTF-8 is allowed in the text (it never matches, so it lands in a gap).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hpcinfer {

class PreTokenizer {
 public:
  // Throws std::invalid_argument naming the pattern if one does not compile.
  explicit PreTokenizer(std::vector<std::string> patterns);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Words of `text`, as views into it, in order; their concatenation is `text`. Thread-safe.
  std::vector<std::string_view> split(std::string_view text) const;
  const std::vector<std::string>& patterns() const { return patterns_; }

  // Presets by llama.cpp's tokenizer.ggml.pre name: "gpt-2" (also the default), "llama3" / "llama-bpe",
  // "qwen2", "deepseek-llm". Empty when the name is unknown.
  static std::vector<std::string> preset(const std::string& pre_name);
  static const char* gpt2_pattern();
  static const char* llama3_pattern();

 private:
  struct Compiled;
  std::vector<std::string> patterns_;
  std::vector<std::unique_ptr<Compiled>> compiled_;
};

}  // namespace hpcinfer
