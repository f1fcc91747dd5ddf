// Byte-level BPE (GPT-2, Llama-3, DeepSeek): split the text with the pre-tokenizer regexes, write each word's
// bytes in GPT-2's byte-to-unicode form, then repeatedly merge the adjacent pair with the lowest merge rank
// (ties: leftmost). With ignore_merges (Llama-3), a word that is already a piece is taken whole.
#pragma once

#include <unordered_map>
#include <utility>

#include "core/tokenizer/pretokenizer.hpp"
#include "core/tokenizer/tokenizer.hpp"

namespace hpcinfer {

using MergeList = std::vector<std::pair<std::string, std::string>>;  // rank order: first merges first

class BpeTokenizer : public Tokenizer {
 public:
  // Merges whose parts or result are not pieces of the vocabulary are skipped (they could never apply).
  BpeTokenizer(VocabData v, const MergeList& merges, std::vector<std::string> pre_patterns, bool ignore_merges);
  std::string kind() const override { return "bpe"; }
  const PreTokenizer& pre_tokenizer() const { return pre_; }
  bool ignore_merges() const { return ignore_merges_; }
  size_t n_merges() const { return merges_.size(); }

 protected:
  void encode_fragment(std::string_view text, bool after_special, std::vector<int>& out) const override;

 private:
  void encode_word(std::string_view word_bytes, std::vector<int>& out) const;
  struct Merge {
    int rank;    // line number in the merges list
    int result;  // id of the merged piece
  };
  static uint64_t key(int l, int r) { return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r); }
  std::unordered_map<uint64_t, Merge> merges_;  // (left id, right id) -> merge
  PreTokenizer pre_;
  bool ignore_merges_;
};

// "Ġ t" -> {"Ġ", "t"}: split at the first space after the first character (llama.cpp's rule). Throws
// std::runtime_error naming `where` when there is no such space.
std::pair<std::string, std::string> split_merge_line(std::string_view line, const std::string& where);

}  // namespace hpcinfer
