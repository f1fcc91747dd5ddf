// SPM-style tokenizer (llama.cpp's algorithm for GGUF "llama" vocabularies; llama2.c's encoder gives the same ids):
// prepend a space, write spaces as the vocabulary does ("▁", or " " for llama2.c files), split into UTF-8
// characters, then repeatedly merge the adjacent pair whose concatenation is the highest-scoring piece (ties: the
// leftmost). Characters no piece covers become "<0xHH>" byte tokens (byte fallback), else <unk>.
#pragma once

#include "core/tokenizer/tokenizer.hpp"

namespace hpcinfer {

class SpmTokenizer : public Tokenizer {
 public:
  explicit SpmTokenizer(VocabData v);  // v.scores must be filled; v.style spm or llama2c
  std::string kind() const override { return "spm"; }

 protected:
  void encode_fragment(std::string_view text, bool after_special, std::vector<int>& out) const override;

 private:
  void push_bytes(std::string_view s, std::vector<int>& out) const;
  std::string space_;        // how the vocabulary writes a space: "▁" or " "
  int byte_ids_[256] = {};   // byte -> "<0xHH>" token (or the one-byte piece, or unk, or -1)
};

}  // namespace hpcinfer
