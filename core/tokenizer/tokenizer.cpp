// The shared half of every tokenizer: vocabulary checks, special-token splitting, BOS, decoding.
#include "core/tokenizer/tokenizer.hpp"

#include <algorithm>
#include <utility>
#include <stdexcept>

#include "core/tokenizer/text_util.hpp"
#include "core/tokenizer/tokenizer_impl.hpp"

namespace hpcinfer {

namespace {
// What a token stands for as bytes, before the after-BOS space rule.
std::string piece_to_bytes(const std::string& piece, TokenType type, PieceStyle style) {
  if (type == TokenType::control) return "";
  switch (style) {
    case PieceStyle::spm:
    case PieceStyle::llama2c: {
      int b = tok::parse_byte_piece(piece);
      if (b >= 0 && type != TokenType::user_defined) return std::string(1, static_cast<char>(b));
      return style == PieceStyle::spm ? tok::replace_all(piece, "\xE2\x96\x81", " ") : piece;
    }
    case PieceStyle::byte_level: {
      std::string out;
      if (type != TokenType::user_defined && tok::unicode_to_bytes(piece, out)) return out;
      return piece;  // added tokens are stored as plain text
    }
  }
  return piece;
}
}  // namespace

Tokenizer::Tokenizer(VocabData v) : v_(std::move(v)) {
  const size_t n = v_.pieces.size();
  if (n == 0) throw std::runtime_error(v_.source + ": tokenizer has an empty vocabulary");
  if (v_.types.empty()) v_.types.assign(n, TokenType::normal);
  if (v_.types.size() != n)
    throw std::runtime_error(v_.source + ": " + std::to_string(v_.types.size()) + " token types for " +
                             std::to_string(n) + " tokens");
  if (!v_.scores.empty() && v_.scores.size() != n)
    throw std::runtime_error(v_.source + ": " + std::to_string(v_.scores.size()) + " token scores for " +
                             std::to_string(n) + " tokens");
  for (auto [id, name] : {std::pair{&v_.bos, "bos"}, {&v_.eos, "eos"}, {&v_.eot, "eot"}, {&v_.unk, "unk"}}) {
    if (*id < 0) *id = -1;  // none (GGUF writes 0xFFFFFFFF for "none")
    else if (static_cast<size_t>(*id) >= n)  // a special id outside the vocabulary: refused, never dropped silently
      throw std::runtime_error(v_.source + ": " + name + " token id " + std::to_string(*id) +
                               " is outside the vocabulary of " + std::to_string(n) + " tokens");
  }
  auto index = std::make_shared<Index>();
  index->ids.reserve(n);
  bytes_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    index->ids[v_.pieces[i]] = static_cast<int>(i);
    bytes_[i] = piece_to_bytes(v_.pieces[i], v_.types[i], v_.style);
    if ((v_.types[i] == TokenType::control || v_.types[i] == TokenType::user_defined) && !v_.pieces[i].empty())
      specials_.push_back(static_cast<int>(i));
  }
  index_ = std::move(index);
  std::stable_sort(specials_.begin(), specials_.end(),
                   [&](int a, int b) { return v_.pieces[a].size() > v_.pieces[b].size(); });
}

std::vector<int> Tokenizer::encode(std::string_view text, bool add_bos, bool parse_special) const {
  std::vector<int> out;
  if (add_bos && v_.bos >= 0) out.push_back(v_.bos);
  if (text.empty()) return out;

  // Split the text around special tokens, longest first (llama.cpp's order): raw fragments keep token = -1.
  struct Frag {
    int token;
    size_t off, len;
  };
  std::vector<Frag> frags{{-1, 0, text.size()}}, next;
  for (int id : specials_) {
    if (!parse_special && v_.types[id] == TokenType::control) continue;
    const std::string& s = v_.pieces[id];
    next.clear();
    for (const Frag& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      std::string_view raw = text.substr(f.off, f.len);
      size_t pos = 0;
      for (size_t hit; (hit = raw.find(s, pos)) != std::string_view::npos; pos = hit + s.size()) {
        if (hit > pos) next.push_back({-1, f.off + pos, hit - pos});
        next.push_back({id, 0, 0});
      }
      if (pos < raw.size()) next.push_back({-1, f.off + pos, raw.size() - pos});
    }
    frags.swap(next);
  }
  bool after_special = true;
  for (const Frag& f : frags) {
    if (f.token >= 0) {
      out.push_back(f.token);
      after_special = true;
    } else {
      encode_fragment(text.substr(f.off, f.len), after_special, out);
      after_special = false;
    }
  }
  return out;
}

std::string Tokenizer::decode_token(int prev, int token) const {
  if (token < 0 || token >= vocab_size())
    throw std::out_of_range(v_.source + ": token id " + std::to_string(token) + " outside vocabulary of " +
                            std::to_string(vocab_size()));
  const std::string& s = bytes_[token];
  if (v_.add_space_prefix && prev >= 0 && prev == v_.bos && !s.empty() && s[0] == ' ') return s.substr(1);
  return s;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  std::string out;
  bool at_start = true;  // the sequence start counts as "after BOS"
  for (int id : ids) {
    std::string s = decode_token(-1, id);
    if (s.empty()) continue;  // control tokens (BOS) decode to "" and keep us at the start
    if (at_start && v_.add_space_prefix && s[0] == ' ') s.erase(0, 1);
    at_start = false;
    out += s;
  }
  return out;
}

std::vector<int> Tokenizer::stop_ids() const {
  std::vector<int> r;
  if (v_.eos >= 0) r.push_back(v_.eos);
  if (v_.eot >= 0 && v_.eot != v_.eos) r.push_back(v_.eot);
  return r;
}

const std::string& Tokenizer::token_text(int id) const {
  if (id < 0 || id >= vocab_size())
    throw std::out_of_range(v_.source + ": token id " + std::to_string(id) + " outside vocabulary");
  return v_.pieces[id];
}

TokenType Tokenizer::token_type(int id) const {
  if (id < 0 || id >= vocab_size())
    throw std::out_of_range(v_.source + ": token id " + std::to_string(id) + " outside vocabulary");
  return v_.types[id];
}

std::optional<int> Tokenizer::find_token(std::string_view piece) const {
  int id = index_->find(piece);
  return id < 0 ? std::nullopt : std::optional<int>(id);
}

}  // namespace hpcinfer
