// Tokenizers: text <-> token ids for every vocabulary hpcinfer reads.
//
//   SPM (SentencePiece-style, score-ordered bigram merges): GGUF "llama" vocab, llama2.c tokenizer.bin
//   byte-level BPE (rank-ordered merges, GPT-2 byte<->unicode map, regex pre-tokenizer): GGUF "gpt2" vocab,
//       HF tokenizer.json, a directory with encoder.json + vocab.bpe
//   SentencePiece .model files through libsentencepiece
//
// One base class holds the vocabulary (pieces, scores, types, special ids) and does what every kind shares:
// splitting the text around special/added tokens, BOS, decoding. Subclasses only encode plain-text fragments.
// Thread-safety: a loaded Tokenizer is immutable; encode/decode may be called from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hpcinfer {

class GgufFile;

// Token types as GGUF numbers them (tokenizer.ggml.token_type).
enum class TokenType : uint8_t { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

// How the stored piece text maps to bytes when decoding.
enum class PieceStyle {
  spm,         // "▁" (U+2581) stands for a space; "<0xHH>" pieces are raw bytes
  llama2c,     // spaces are literal (llama2.c export); "<0xHH>" pieces are raw bytes
  byte_level,  // GPT-2 byte-to-unicode form: every code point stands for one byte
};

// Everything a loader reads from a file; the Tokenizer constructors take it by value.
struct VocabData {
  std::vector<std::string> pieces;  // [vocab_size] token text as stored in the file
  std::vector<float> scores;        // [vocab_size] SPM merge scores (higher merges first); empty for BPE
  std::vector<TokenType> types;     // [vocab_size]
  int bos = -1, eos = -1, eot = -1, unk = -1;  // -1: none
  bool add_bos = false;             // whether encode() callers should add BOS by default
  bool add_space_prefix = false;    // SPM: prepend " " to the text (and after each special token)
  PieceStyle style = PieceStyle::spm;
  std::string chat_template;        // raw template text from the file's metadata (may be empty)
  std::string source;               // file it came from, for error messages
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Token ids of `text`; BOS first when add_bos (and the vocabulary has one). With parse_special, the text of
  // control and user-defined tokens (e.g. "<|eot_id|>") becomes those tokens; without, only user-defined ones
  // are matched (llama.cpp's parse_special=false). Empty text gives [] (or [BOS]).
  std::vector<int> encode(std::string_view text, bool add_bos, bool parse_special = true) const;
  std::vector<int> encode(std::string_view text) const { return encode(text, add_bos()); }

  // The bytes token `token` stands for when it follows `prev` (llama2.c rules): the leading space of the first
  // piece after BOS is dropped (for vocabularies that add a space prefix); "<0xHH>" is one raw byte; control
  // tokens give "". Throws std::out_of_range for an id outside the vocabulary.
  std::string decode_token(int prev, int token) const;
  // Concatenated decode_token; the sequence start counts as "after BOS", so decode(encode(x, false)) == x
  // wherever the vocabulary can represent x.
  std::string decode(const std::vector<int>& ids) const;

  int bos_id() const { return v_.bos; }
  int eos_id() const { return v_.eos; }
  int eot_id() const { return v_.eot; }  // end of turn (<|eot_id|>, <|im_end|>), -1 if none
  std::vector<int> stop_ids() const;     // eos and eot, the ones that exist
  bool add_bos() const { return v_.add_bos; }
  int vocab_size() const { return static_cast<int>(v_.pieces.size()); }
  const std::string& token_text(int id) const;  // the piece as stored (e.g. "▁Hello", "ĠHello", "<0x0A>")
  TokenType token_type(int id) const;
  std::optional<int> find_token(std::string_view piece) const;  // exact stored piece -> id
  const std::string& chat_template() const { return v_.chat_template; }
  const std::string& source() const { return v_.source; }
  const std::string& piece(int id) const { return v_.pieces.at(size_t(id)); }  // the token's text as the file stores it
  virtual std::string kind() const = 0;  // "spm", "bpe", "sentencepiece"

 protected:
  explicit Tokenizer(VocabData v);
  // Appends the ids of one fragment of plain text (no special tokens in it). `after_special` is true for the
  // first fragment and for one right after a special token (SPM adds its space prefix there).
  virtual void encode_fragment(std::string_view text, bool after_special, std::vector<int>& out) const = 0;

  VocabData v_;
  struct Index;  // piece text -> id
  std::shared_ptr<const Index> index_;
  std::vector<std::string> bytes_;  // [vocab_size] what each token decodes to (control tokens: "")
  std::vector<int> specials_;       // control + user-defined ids, longest text first (matched in the text)
};

// Loads any supported tokenizer: a .gguf (embedded vocab), a SentencePiece .model, a llama2.c tokenizer.bin,
// an HF tokenizer.json, encoder.json (+ vocab.bpe beside it), or a directory holding one of these.
// Throws std::runtime_error naming the file (and the field) on anything it cannot read.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);
// The vocabulary embedded in a GGUF model or vocab file (tokenizer.ggml.*).
std::unique_ptr<Tokenizer> tokenizer_from_gguf(const GgufFile& gguf);
// llama2.c tokenizer.bin. expected_vocab > 0: read exactly that many tokens (a model header says how many);
// otherwise read records until EOF. BOS=1, EOS=2, add_bos, space prefix.
std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path, int expected_vocab = -1);
// HF tokenizer.json (BPE models); tokenizer_config.json beside it is read when present (bos/eos, chat_template).
std::unique_ptr<Tokenizer> load_hf_tokenizer_json(const std::string& path);
// GPT-2 style directory: encoder.json (piece -> id) + vocab.bpe (merges, rank = line order).
std::unique_ptr<Tokenizer> load_encoder_json_dir(const std::string& dir);
// SentencePiece .model through libsentencepiece.
std::unique_ptr<Tokenizer> load_sentencepiece_model(const std::string& path);

}  // namespace hpcinfer
