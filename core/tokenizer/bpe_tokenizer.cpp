#include "core/tokenizer/bpe_tokenizer.hpp"

#include <queue>
#include <stdexcept>

#include "core/tokenizer/text_util.hpp"
#include "core/tokenizer/tokenizer_impl.hpp"

namespace hpcinfer {

std::pair<std::string, std::string> split_merge_line(std::string_view line, const std::string& where) {
  size_t sp = line.empty() ? std::string_view::npos : line.find(' ', 1);
  if (sp == std::string_view::npos)
    throw std::runtime_error(where + ": merge '" + std::string(line) + "' is not two pieces separated by a space");
  return {std::string(line.substr(0, sp)), std::string(line.substr(sp + 1))};
}

BpeTokenizer::BpeTokenizer(VocabData v, const MergeList& merges, std::vector<std::string> pre_patterns,
                           bool ignore_merges)
    : Tokenizer(std::move(v)), pre_(std::move(pre_patterns)), ignore_merges_(ignore_merges) {
  merges_.reserve(merges.size());
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    int l = index_->find(a), r = index_->find(b);
    joined.assign(a).append(b);
    int res = index_->find(joined);
    if (l < 0 || r < 0 || res < 0) continue;
    merges_.emplace(key(l, r), Merge{static_cast<int>(rank), res});  // emplace keeps the first (lowest) rank
  }
}

void BpeTokenizer::encode_fragment(std::string_view text, bool, std::vector<int>& out) const {
  for (std::string_view word : pre_.split(text)) encode_word(word, out);
}

namespace {
struct Symbol {
  int id;          // piece id; -1 if the character is not a piece; -2 once merged away
  int prev, next;  // neighbours (-1 at the ends)
  size_t off, n;   // bytes of the unicode-form word
};
struct Pair {
  int rank, left, right, lid, rid;  // lid/rid: the ids the two symbols had when queued
};
struct PairOrder {  // lowest rank first, then leftmost
  bool operator()(const Pair& a, const Pair& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};
}  // namespace

void BpeTokenizer::encode_word(std::string_view word_bytes, std::vector<int>& out) const {
  const std::string word = tok::bytes_to_unicode(word_bytes);
  if (ignore_merges_) {
    int id = index_->find(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  std::vector<Symbol> sym;  // [n_chars]
  for (size_t off = 0; off < word.size();) {
    size_t n = std::min(tok::utf8_len(static_cast<unsigned char>(word[off])), word.size() - off);
    int idx = static_cast<int>(sym.size());
    sym.push_back({index_->find(std::string_view(word).substr(off, n)), idx - 1,
                   off + n < word.size() ? idx + 1 : -1, off, n});
    off += n;
  }
  std::priority_queue<Pair, std::vector<Pair>, PairOrder> queue;
  auto try_add = [&](int l, int r) {
    if (l < 0 || r < 0 || sym[l].id < 0 || sym[r].id < 0) return;
    auto it = merges_.find(key(sym[l].id, sym[r].id));
    if (it != merges_.end()) queue.push({it->second.rank, l, r, sym[l].id, sym[r].id});
  };
  for (size_t i = 1; i < sym.size(); ++i) try_add(static_cast<int>(i) - 1, static_cast<int>(i));
  while (!queue.empty()) {
    Pair p = queue.top();
    queue.pop();
    Symbol& l = sym[p.left];
    Symbol& r = sym[p.right];
    if (l.id != p.lid || r.id != p.rid || l.next != p.right) continue;  // stale: a side changed since queued
    l.id = merges_.at(key(p.lid, p.rid)).result;
    l.n += r.n;
    r.id = -2;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = p.left;
    try_add(l.prev, p.left);
    try_add(p.left, l.next);
  }
  for (int i = sym.empty() ? -1 : 0; i >= 0; i = sym[i].next) {
    if (sym[i].id >= 0) {
      out.push_back(sym[i].id);
      continue;
    }
    // Not a piece (a vocabulary without all 256 byte characters): one-byte pieces where they exist.
    for (char c : std::string_view(word).substr(sym[i].off, sym[i].n)) {
      int id = index_->find(std::string_view(&c, 1));
      if (id >= 0) out.push_back(id);
    }
  }
}

}  // namespace hpcinfer
