// load_tokenizer(): finds out what kind of tokenizer file (or directory) it was given and loads it.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/formats/gguf.hpp"
#include "core/tokenizer/tokenizer.hpp"

namespace hpcinfer {

namespace fs = std::filesystem;

namespace {

std::string head_bytes(const fs::path& p, size_t n) {
  std::ifstream f(p, std::ios::binary);
  std::string s(n, '\0');
  f.read(s.data(), static_cast<std::streamsize>(n));
  s.resize(static_cast<size_t>(f.gcount()));
  return s;
}

std::unique_ptr<Tokenizer> load_file(const fs::path& p) {
  const std::string name = p.filename().string();
  const std::string ext = p.extension().string();
  const std::string head = head_bytes(p, 4);
  if (head == "GGUF") return tokenizer_from_gguf(GgufFile(p.string()));
  if (name == "encoder.json" || name == "vocab.bpe") return load_encoder_json_dir(p.parent_path().string());
  if (ext == ".json" || (!head.empty() && head[0] == '{')) return load_hf_tokenizer_json(p.string());
  if (ext == ".model") return load_sentencepiece_model(p.string());
  if (ext == ".bin") return load_llama2c_tokenizer(p.string());
  // No telling extension: a SentencePiece model is a protobuf whose first field is a piece (tag 0x0A).
  if (!head.empty() && head[0] == '\x0A') return load_sentencepiece_model(p.string());
  return load_llama2c_tokenizer(p.string());
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer_any(const std::string& path);

// Every tokenizer file goes through here: a JSON field of the wrong type or shape gets the file named, not the raw
// "[json.exception.type_error.302] type must be number" of the JSON library; a FIFO or device is refused, not read.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  std::error_code ec;
  if (fs::exists(path, ec) && !fs::is_directory(path, ec) && !fs::is_regular_file(path, ec))
    throw std::runtime_error(path + ": not a tokenizer file (a FIFO, device or socket)");
  try {
    return load_tokenizer_any(path);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": malformed tokenizer file: a field has the wrong type or shape (" +
                             std::string(e.what()) + ")");
  }
}

std::unique_ptr<Tokenizer> load_tokenizer_any(const std::string& path) {
  const fs::path p(path);
  std::error_code ec;
  if (!fs::exists(p, ec)) throw std::runtime_error(path + ": tokenizer file not found");
  if (!fs::is_directory(p, ec)) return load_file(p);
  // A directory: the first of these that is there.
  if (fs::exists(p / "tokenizer.json")) return load_hf_tokenizer_json((p / "tokenizer.json").string());
  if (fs::exists(p / "encoder.json") && fs::exists(p / "vocab.bpe")) return load_encoder_json_dir(path);
  if (fs::exists(p / "tokenizer.model")) return load_sentencepiece_model((p / "tokenizer.model").string());
  if (fs::exists(p / "tokenizer.bin")) return load_llama2c_tokenizer((p / "tokenizer.bin").string());
  std::vector<fs::path> ggufs;
  for (const auto& e : fs::directory_iterator(p))
    if (e.path().extension() == ".gguf") ggufs.push_back(e.path());
  if (ggufs.size() == 1) return load_file(ggufs.front());
  throw std::runtime_error(path + ": no tokenizer found in this directory (looked for tokenizer.json, "
                                  "encoder.json + vocab.bpe, tokenizer.model, tokenizer.bin, one *.gguf)");
}

}  // namespace hpcinfer
