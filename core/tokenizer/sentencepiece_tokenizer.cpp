// SentencePiece .model files through libsentencepiece: the library encodes; the vocabulary (pieces, scores,
// types) is copied out so decoding and special tokens work as for every other tokenizer.
#include <sentencepiece_processor.h>

#include <stdexcept>

#include "core/tokenizer/tokenizer.hpp"

namespace hpcinfer {

namespace {

class SentencePieceTokenizer : public Tokenizer {
 public:
  SentencePieceTokenizer(VocabData v, std::unique_ptr<sentencepiece::SentencePieceProcessor> sp)
      : Tokenizer(std::move(v)), sp_(std::move(sp)) {}
  std::string kind() const override { return "sentencepiece"; }

 protected:
  // The library adds its dummy-prefix space to every fragment it is given (llama.cpp: only to the first and to
  // those after a special token); the two agree for text without special tokens.
  void encode_fragment(std::string_view text, bool, std::vector<int>& out) const override {
    std::vector<int> ids;
    auto st = sp_->Encode(text, &ids);
    if (!st.ok()) throw std::runtime_error(v_.source + ": sentencepiece encode failed: " + st.ToString());
    out.insert(out.end(), ids.begin(), ids.end());
  }

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

}  // namespace

std::unique_ptr<Tokenizer> load_sentencepiece_model(const std::string& path) {
  auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
  auto st = sp->Load(path);
  if (!st.ok()) throw std::runtime_error(path + ": cannot load SentencePiece model: " + st.ToString());
  VocabData v;
  v.source = path;
  v.style = PieceStyle::spm;
  const int n = sp->GetPieceSize();
  for (int i = 0; i < n; ++i) {
    v.pieces.push_back(sp->IdToPiece(i));
    v.scores.push_back(sp->GetScore(i));
    TokenType t = TokenType::normal;
    if (sp->IsControl(i)) t = TokenType::control;
    else if (sp->IsUnknown(i)) t = TokenType::unknown;
    else if (sp->IsByte(i)) t = TokenType::byte;
    else if (sp->IsUnused(i)) t = TokenType::unused;
    v.types.push_back(t);
  }
  v.bos = sp->bos_id();
  v.eos = sp->eos_id();
  v.unk = sp->unk_id();
  v.add_bos = v.bos >= 0;
  v.add_space_prefix = true;  // the normalizer's add_dummy_prefix, on for Llama-family models
  return std::make_unique<SentencePieceTokenizer>(std::move(v), std::move(sp));
}

}  // namespace hpcinfer
