// llama2.c tokenizer.bin: i32 max_token_length, then per token: f32 score, i32 len, len bytes of piece.
// Pieces use literal spaces (the exporter replaced "▁"); ids 0/1/2 are <unk>, BOS ("\n<s>\n"), EOS ("\n</s>\n").
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "core/tokenizer/spm_tokenizer.hpp"
#include "core/tokenizer/text_util.hpp"

namespace hpcinfer {

std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path, int expected_vocab) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot open llama2.c tokenizer");
  const std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t pos = 0;
  auto read_i32 = [&](const char* what, size_t tok) {
    if (data.size() - pos < 4)
      throw std::runtime_error(path + ": truncated llama2.c tokenizer: " + what + " of token " + std::to_string(tok) +
                               " runs past the end of the file (" + std::to_string(data.size()) + " bytes)");
    int32_t x;
    std::memcpy(&x, data.data() + pos, 4);
    pos += 4;
    return x;
  };
  if (data.size() < 4) throw std::runtime_error(path + ": truncated llama2.c tokenizer: no max_token_length header");
  const int32_t max_len = read_i32("header", 0);
  if (max_len <= 0 || max_len > (1 << 20))
    throw std::runtime_error(path + ": not a llama2.c tokenizer: max_token_length " + std::to_string(max_len));

  VocabData v;
  v.source = path;
  v.style = PieceStyle::llama2c;
  for (size_t i = 0; expected_vocab > 0 ? i < size_t(expected_vocab) : pos < data.size(); ++i) {
    int32_t score_bits = read_i32("score", i);
    float score;
    std::memcpy(&score, &score_bits, 4);
    int32_t len = read_i32("length", i);
    if (len < 0 || len > max_len || data.size() - pos < size_t(len))
      throw std::runtime_error(path + ": truncated or corrupt llama2.c tokenizer: token " + std::to_string(i) +
                               " has length " + std::to_string(len) + " (max_token_length " + std::to_string(max_len) +
                               ", " + std::to_string(data.size() - pos) + " bytes left)");
    v.pieces.emplace_back(data, pos, size_t(len));
    v.scores.push_back(score);
    pos += size_t(len);
  }
  if (expected_vocab > 0 && pos != data.size())
    throw std::runtime_error(path + ": llama2.c tokenizer has bytes after the " + std::to_string(expected_vocab) +
                             " tokens the model expects (vocab size mismatch?)");
  const size_t n = v.pieces.size();
  if (n < 3) throw std::runtime_error(path + ": llama2.c tokenizer has only " + std::to_string(n) + " tokens");
  v.types.assign(n, TokenType::normal);
  v.unk = 0;
  v.bos = 1;
  v.eos = 2;
  v.types[0] = TokenType::unknown;
  v.types[1] = v.types[2] = TokenType::control;
  v.pieces[1] = "<s>";  // stored as "\n<s>\n"; the plain text is what a prompt would spell
  v.pieces[2] = "</s>";
  for (size_t i = 3; i < n; ++i)
    if (tok::parse_byte_piece(v.pieces[i]) >= 0) v.types[i] = TokenType::byte;
  v.add_bos = true;
  v.add_space_prefix = true;
  return std::make_unique<SpmTokenizer>(std::move(v));
}

}  // namespace hpcinfer
