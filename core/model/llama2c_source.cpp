#include "core/model/llama2c_source.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <filesystem>
#include <stdexcept>

#include "core/formats/checked_size.hpp"
#include "core/formats/mapped_file.hpp"
#include "core/model/base_source.hpp"
#include "core/model/model_layout.hpp"

namespace fs = std::filesystem;

namespace hpcinfer {
namespace {

class Llama2cSource : public BaseSource {
 public:
  explicit Llama2cSource(const std::string& path);
  std::string format() const override { return "llama2c"; }
  std::string tokenizer_path() const override { return tokenizer_; }

 private:
  MappedFile file_;
  std::string tokenizer_;
};

Llama2cSource::Llama2cSource(const std::string& path) : file_(path) {
  path_ = path;
  if (file_.size() < 28)
    throw std::runtime_error(path + ": too small for a llama2.c checkpoint (" + std::to_string(file_.size()) +
                             " bytes, the header alone is 28)");
  int32_t h[7];
  std::memcpy(h, file_.data(), sizeof(h));
  if (uint32_t(h[0]) == 0x616b3432u)  // "ak42": llama2.c's newer export versions
    throw std::runtime_error(path + ": llama2.c export version with magic 'ak42' is not supported (use the legacy "
                             "version 0 export, or GGUF)");
  const bool shared = h[5] > 0;
  desc_.arch = "llama";
  desc_.dim = h[0];
  desc_.vocab = shared ? h[5] : -int64_t(h[5]);
  desc_.max_seq_len = h[6];
  desc_.norm_eps = 1e-5f;
  desc_.bos_id = 1;
  desc_.eos_id = 2;
  desc_.tied_embeddings = shared;
  LayerSpec l;
  l.ffn.hidden_dim = h[1];
  l.attn.n_heads = h[3];
  l.attn.n_kv_heads = h[4];
  l.attn.head_dim = h[3] > 0 ? h[0] / h[3] : 0;
  l.attn.rope.theta = 10000.0f;
  if (h[3] > 0 && h[0] % h[3] != 0)
    throw std::runtime_error(path + ": header: dim " + std::to_string(h[0]) + " is not a multiple of n_heads " +
                             std::to_string(h[3]));
  if (h[2] <= 0 || h[2] > (1 << 16))
    throw std::runtime_error(path + ": header: n_layers: " + std::to_string(h[2]) + " is not a layer count");
  desc_.layers = uniform_layers(h[2], l);
  validate_desc(desc_, path + ": header");

  // Offsets (in floats) of every array, in file order.
  const int64_t L = desc_.n_layers(), dim = desc_.dim, hid = l.ffn.hidden_dim, hs = l.attn.head_dim;
  const int64_t q = l.attn.n_heads * hs, kv = l.attn.n_kv_heads * hs, vocab = desc_.vocab;
  struct Arr { const char* name; int64_t rows, cols, count; };  // `count` stacked [rows, cols] matrices
  const Arr arrays[] = {{"token_embedding", vocab, dim, 1}, {"rms_att", 1, dim, L}, {"wq", q, dim, L},
                        {"wk", kv, dim, L}, {"wv", kv, dim, L}, {"wo", dim, q, L}, {"rms_ffn", 1, dim, L},
                        {"w1", hid, dim, L}, {"w2", dim, hid, L}, {"w3", hid, dim, L}, {"rms_final", 1, dim, 1},
                        {"freq_cis_real", desc_.max_seq_len, hs / 2, 1}, {"freq_cis_imag", desc_.max_seq_len, hs / 2, 1},
                        {"wcls", shared ? 0 : vocab, dim, 1}};
  int64_t total = 0;
  for (const auto& a : arrays)  // validate_desc bounds each size; the products are still checked (header-controlled)
    total = checked_sum(total, checked_product({a.rows, a.cols, a.count, 4}, path + ": header: " + a.name) / 4,
                        path + ": header: total size");
  const uint64_t expect = 28 + uint64_t(total) * 4;
  if (file_.size() != expect)
    throw std::runtime_error(path + ": file size " + std::to_string(file_.size()) + " does not match its header (dim " +
                             std::to_string(dim) + ", hidden " + std::to_string(hid) + ", layers " + std::to_string(L) +
                             ", heads " + std::to_string(l.attn.n_heads) + "/" + std::to_string(l.attn.n_kv_heads) +
                             ", vocab " + std::to_string(h[5]) + ", seq_len " + std::to_string(desc_.max_seq_len) +
                             "): expected " + std::to_string(expect) + " bytes");

  const float* base = reinterpret_cast<const float*>(file_.data() + 28);
  std::map<std::string, const float*> at;
  int64_t off = 0;
  for (const auto& a : arrays) {
    at[a.name] = base + off;
    off += a.rows * a.cols * a.count;
  }
  // layer < 0: a single (non-stacked) array.
  auto reg = [&](const std::string& canonical, const char* arr, int64_t layer, int permute = 0) {
    auto [rows, cols] = tensor_shape(desc_, canonical);
    TensorView v;
    v.dtype = DType::f32;
    v.rows = rows;
    v.cols = cols;
    v.data = at[arr] + std::max<int64_t>(layer, 0) * rows * cols;
    add(canonical, v, path, layer < 0 ? std::string(arr) : std::string(arr) + "[" + std::to_string(layer) + "]", permute);
  };
  reg("tok_embeddings", "token_embedding", -1);
  for (int i = 0; i < desc_.n_layers(); ++i) {
    reg(layer_tensor(i, "attn_norm"), "rms_att", i);
    reg(layer_tensor(i, "wq"), "wq", i, l.attn.n_heads);
    reg(layer_tensor(i, "wk"), "wk", i, l.attn.n_kv_heads);
    reg(layer_tensor(i, "wv"), "wv", i);
    reg(layer_tensor(i, "wo"), "wo", i);
    reg(layer_tensor(i, "ffn_norm"), "rms_ffn", i);
    reg(layer_tensor(i, "w_gate"), "w1", i);
    reg(layer_tensor(i, "w_down"), "w2", i);
    reg(layer_tensor(i, "w_up"), "w3", i);
  }
  reg("norm", "rms_final", -1);
  if (!shared) reg("output", "wcls", -1);

  const fs::path dir = fs::path(path).parent_path();
  for (const std::string n : {"tok" + std::to_string(vocab) + ".bin", std::string("tokenizer.bin")})
    if (fs::exists(dir / n)) {
      tokenizer_ = (dir / n).string();
      break;
    }
}

}  // namespace

std::unique_ptr<ModelSource> open_llama2c_model(const std::string& path) {
  return std::make_unique<Llama2cSource>(path);
}

}  // namespace hpcinfer
