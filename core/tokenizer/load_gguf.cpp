// The vocabulary a GGUF file embeds (tokenizer.ggml.*), as llama.cpp reads it.
#include <stdexcept>

#include "core/formats/gguf.hpp"
#include "core/tokenizer/bpe_tokenizer.hpp"
#include "core/tokenizer/spm_tokenizer.hpp"

namespace hpcinfer {

std::unique_ptr<Tokenizer> tokenizer_from_gguf(const GgufFile& g) {
  const std::string path = g.path();
  if (!g.has("tokenizer.ggml.tokens"))
    throw std::runtime_error(path + ": metadata key tokenizer.ggml.tokens is missing (no vocabulary embedded; "
                                    "pass --tokenizer with a tokenizer file)");
  const std::string model = g.get_string_or("tokenizer.ggml.model", "llama");
  VocabData v;
  v.source = path;
  v.pieces = g.get_string_array("tokenizer.ggml.tokens");
  const size_t n = v.pieces.size();
  if (g.has("tokenizer.ggml.token_type")) {
    auto types = g.get_int_array("tokenizer.ggml.token_type");
    if (types.size() != n)
      throw std::runtime_error(path + ": metadata key tokenizer.ggml.token_type has " + std::to_string(types.size()) +
                               " entries for " + std::to_string(n) + " tokens");
    v.types.reserve(n);
    for (int64_t t : types) v.types.push_back(t >= 1 && t <= 6 ? static_cast<TokenType>(t) : TokenType::normal);
  }
  auto id_or = [&](const char* key, int64_t fallback) { return static_cast<int>(g.get_int_or(key, fallback)); };
  v.bos = id_or("tokenizer.ggml.bos_token_id", -1);
  v.eos = id_or("tokenizer.ggml.eos_token_id", -1);
  v.eot = id_or("tokenizer.ggml.eot_token_id", -1);
  v.unk = id_or("tokenizer.ggml.unknown_token_id", -1);
  v.chat_template = g.get_string_or("tokenizer.chat_template", "");
  auto bool_or = [&](const char* key, bool fallback) { return g.has(key) ? g.get_bool(key) : fallback; };

  if (model == "llama") {
    if (!g.has("tokenizer.ggml.scores"))
      throw std::runtime_error(path + ": metadata key tokenizer.ggml.scores is missing (needed by the SPM vocabulary)");
    auto scores = g.get_float_array("tokenizer.ggml.scores");
    v.scores.assign(scores.begin(), scores.end());
    if (v.bos < 0 && n > 1 && !g.has("tokenizer.ggml.bos_token_id")) v.bos = 1;  // llama.cpp's SPM defaults
    if (v.eos < 0 && n > 2 && !g.has("tokenizer.ggml.eos_token_id")) v.eos = 2;
    if (v.unk < 0 && !g.has("tokenizer.ggml.unknown_token_id")) v.unk = 0;
    v.add_bos = bool_or("tokenizer.ggml.add_bos_token", true);
    v.add_space_prefix = bool_or("tokenizer.ggml.add_space_prefix", true);
    v.style = PieceStyle::spm;
    return std::make_unique<SpmTokenizer>(std::move(v));
  }
  if (model == "gpt2") {
    const std::string pre = g.get_string_or("tokenizer.ggml.pre", "default");
    auto patterns = PreTokenizer::preset(pre);
    if (patterns.empty()) patterns = PreTokenizer::preset("gpt-2");  // unknown pre-tokenizer: GPT-2's regex
    const bool llama3 = patterns.front() == PreTokenizer::llama3_pattern();
    if (!g.has("tokenizer.ggml.merges"))
      throw std::runtime_error(path + ": metadata key tokenizer.ggml.merges is missing (needed by the BPE vocabulary)");
    MergeList merges;
    for (const std::string& m : g.get_string_array("tokenizer.ggml.merges"))
      merges.push_back(split_merge_line(m, path + ": tokenizer.ggml.merges"));
    v.add_bos = bool_or("tokenizer.ggml.add_bos_token", llama3);
    v.style = PieceStyle::byte_level;
    if (v.eot < 0)  // llama.cpp finds the end-of-turn token by its text when the key is absent
      for (size_t i = 0; i < n; ++i)
        if (v.pieces[i] == "<|eot_id|>" || v.pieces[i] == "<|im_end|>" || v.pieces[i] == "<|end_of_turn|>") v.eot = int(i);
    return std::make_unique<BpeTokenizer>(std::move(v), merges, std::move(patterns), llama3);
  }
  throw std::runtime_error(path + ": metadata key tokenizer.ggml.model is '" + model +
                           "'; supported: llama (SPM), gpt2 (byte-level BPE)");
}

}  // namespace hpcinfer
