#include "core/tokenizer/spm_tokenizer.hpp"

#include <queue>
#include <stdexcept>
#include <utility>

#include "core/tokenizer/text_util.hpp"
#include "core/tokenizer/tokenizer_impl.hpp"

namespace hpcinfer {

SpmTokenizer::SpmTokenizer(VocabData v) : Tokenizer(std::move(v)) {
  if (v_.scores.size() != v_.pieces.size())
    throw std::runtime_error(v_.source + ": SPM vocabulary needs one score per token (got " +
                             std::to_string(v_.scores.size()) + " for " + std::to_string(v_.pieces.size()) + ")");
  space_ = v_.style == PieceStyle::llama2c ? " " : "\xE2\x96\x81";
  for (int b = 0; b < 256; ++b) {
    int id = index_->find(tok::byte_piece(static_cast<unsigned char>(b)));
    if (id < 0) id = index_->find(std::string(1, static_cast<char>(b)));
    byte_ids_[b] = id >= 0 ? id : v_.unk;
  }
}

void SpmTokenizer::push_bytes(std::string_view s, std::vector<int>& out) const {
  for (unsigned char c : s)
    if (byte_ids_[c] >= 0) out.push_back(byte_ids_[c]);
}

namespace {
struct Symbol {
  int prev, next;  // neighbours in the linked list (-1 at the ends)
  size_t off, n;   // bytes [off, off+n) of the escaped text; n == 0 once merged away
};
struct Bigram {
  int left, right;
  float score;
  size_t size;  // bytes of the merged piece, to detect stale entries
};
struct BigramOrder {  // highest score first, then leftmost
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};
}  // namespace

void SpmTokenizer::encode_fragment(std::string_view text, bool after_special, std::vector<int>& out) const {
  std::string s = (v_.add_space_prefix && after_special) ? " " : "";
  s += text;
  if (space_ != " ") s = tok::replace_all(s, " ", space_);

  // [n_symbols] one symbol per UTF-8 character
  std::vector<Symbol> sym;
  for (size_t off = 0; off < s.size();) {
    size_t n = std::min(tok::utf8_len(static_cast<unsigned char>(s[off])), s.size() - off);
    int idx = static_cast<int>(sym.size());
    sym.push_back({idx - 1, off + n < s.size() ? idx + 1 : -1, off, n});
    off += n;
  }
  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  auto try_add = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    std::string_view piece(s.data() + sym[l].off, sym[l].n + sym[r].n);
    int id = index_->find(piece);
    if (id < 0) return;
    queue.push({l, r, v_.scores[id], piece.size()});
  };
  for (size_t i = 1; i < sym.size(); ++i) try_add(static_cast<int>(i) - 1, static_cast<int>(i));

  while (!queue.empty()) {
    Bigram b = queue.top();
    queue.pop();
    Symbol& l = sym[b.left];
    Symbol& r = sym[b.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // one side already merged elsewhere
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }

  // Emit the surviving symbols. Merges only ever form pieces of the vocabulary, so a symbol that is not a piece
  // is a single character no piece covers: byte fallback.
  for (int i = sym.empty() ? -1 : 0; i >= 0; i = sym[i].next) {
    std::string_view piece(s.data() + sym[i].off, sym[i].n);
    int id = index_->find(piece);
    if (id >= 0)
      out.push_back(id);
    else
      push_bytes(piece, out);
  }
}

}  // namespace hpcinfer
