#include "core/model/gguf_source.hpp"

#include <cmath>
#include <cstdlib>
#include <map>
#include <stdexcept>

#include "core/formats/checked_size.hpp"
#include "core/formats/gguf.hpp"
#include "core/model/base_source.hpp"
#include "core/model/model_layout.hpp"
#include "core/model/rope.hpp"

namespace hpcinfer {
namespace {

// Llama 3.1+ GGUF files carry RoPE scaling as a per-frequency factor table (rope_freqs.weight [head_dim / 2]), built
// by llama.cpp's converter from the "llama3" rope_scaling parameters. Recover those parameters by matching the table
// against the published settings (factor 8 / 16 / 32, low 1, high 4, original 8192); throws naming the file if none fits.
RopeSpec fit_llama3_scaling(const GgufFile& f, const GgufTensorInfo& t, const AttentionSpec& d) {
  const std::string where = f.path() + ": tensor rope_freqs.weight";
  if (t.dtype != DType::f32 || t.dims.size() != 1 || t.dims[0] != d.head_dim / 2)
    throw std::runtime_error(where + ": expected f32 [" + std::to_string(d.head_dim / 2) + "]");
  const float* table = static_cast<const float*>(f.view(t).data);
  RopeSpec plain = d.rope;
  plain.type = "default";
  const std::vector<double> f0 = rope_inv_freq(plain, d.head_dim, nullptr);
  for (float factor : {8.0f, 16.0f, 32.0f, 4.0f, 2.0f}) {
    RopeSpec rs = d.rope;
    rs.type = "llama3";
    rs.factor = factor;
    rs.low_freq_factor = 1.0f;
    rs.high_freq_factor = 4.0f;
    rs.original_max_position = 8192;
    const std::vector<double> f = rope_inv_freq(rs, d.head_dim, nullptr);  // the table holds f0 / f per frequency
    bool ok = true;
    for (size_t i = 0; i < f.size() && ok; ++i) ok = std::fabs(table[i] - f0[i] / f[i]) <= 1e-3 * (f0[i] / f[i]);
    if (ok) return rs;
  }
  throw std::runtime_error(where + ": RoPE frequency factors do not match the llama3 rope_scaling settings "
                           "(factor 2/4/8/16/32, low 1, high 4, original 8192); not supported");
}

class GgufSource : public BaseSource {
 public:
  explicit GgufSource(const std::string& path);
  std::string format() const override { return "gguf"; }
  std::string tokenizer_path() const override { return has_vocab_ ? path_ : std::string(); }

 private:
  GgufFile file_;
  bool has_vocab_ = false;
};

GgufSource::GgufSource(const std::string& path) : file_(path) {
  path_ = path;
  const std::string arch = file_.get_string("general.architecture");
  if (arch != "llama" && arch != "qwen2" && arch != "qwen3")
    throw std::runtime_error(path + ": metadata key general.architecture: unsupported architecture '" + arch +
                             "' (supported: llama, qwen2, qwen3)");
  const std::string p = arch + ".";
  desc_.arch = arch;
  LayerSpec l;
  l.attn.qkv_bias = arch == "qwen2";
  l.attn.qk_norm = arch == "qwen3";
  desc_.dim = file_.get_int(p + "embedding_length");
  l.ffn.hidden_dim = file_.get_int(p + "feed_forward_length");
  const int n_layers = narrow_int(file_.get_int(p + "block_count"), 1, 1 << 16, path + ": metadata key " + p + "block_count");
  l.attn.n_heads = narrow_int(file_.get_int(p + "attention.head_count"), 1, 1 << 14, path + ": metadata key " + p + "attention.head_count");
  l.attn.n_kv_heads = narrow_int(file_.get_int_or(p + "attention.head_count_kv", l.attn.n_heads), 1, 1 << 14,
                                 path + ": metadata key " + p + "attention.head_count_kv");
  l.attn.head_dim = file_.get_int_or(p + "attention.key_length", l.attn.n_heads > 0 ? desc_.dim / l.attn.n_heads : 0);
  desc_.norm_eps = float(file_.get_float_or(p + "attention.layer_norm_rms_epsilon", 1e-5));
  l.attn.rope.theta = float(file_.get_float_or(p + "rope.freq_base", 10000.0));
  desc_.max_seq_len = narrow_int(file_.get_int_or(p + "context_length", 2048), 1, 1 << 24, path + ": metadata key " + p + "context_length");
  desc_.bos_id = narrow_int(file_.get_int_or("tokenizer.ggml.bos_token_id", 1), 0, INT32_MAX, path + ": metadata key tokenizer.ggml.bos_token_id");
  desc_.eos_id = narrow_int(file_.get_int_or("tokenizer.ggml.eos_token_id", 2), 0, INT32_MAX, path + ": metadata key tokenizer.ggml.eos_token_id");
  has_vocab_ = file_.has("tokenizer.ggml.tokens");
  if (file_.has(p + "vocab_size")) {
    desc_.vocab = file_.get_int(p + "vocab_size");
  } else if (has_vocab_) {
    desc_.vocab = int64_t(file_.get_string_array("tokenizer.ggml.tokens").size());
  } else if (const GgufTensorInfo* e = file_.find_tensor("token_embd.weight")) {
    desc_.vocab = e->rows();
  }
  if (int64_t rot = file_.get_int_or(p + "rope.dimension_count", l.attn.head_dim); rot != l.attn.head_dim)
    throw std::runtime_error(path + ": metadata key " + p + "rope.dimension_count: partial rotary (" + std::to_string(rot) +
                             " of head_dim " + std::to_string(l.attn.head_dim) + ") is not supported");
  const std::string st = file_.get_string_or(p + "rope.scaling.type", "none");
  if (st == "linear") {
    l.attn.rope.type = "linear";
    l.attn.rope.factor = float(file_.get_float(p + "rope.scaling.factor"));
  } else if (st != "none" && st != "llama3") {
    throw std::runtime_error(path + ": metadata key " + p + "rope.scaling.type: '" + st +
                             "' is not supported (none, linear, llama3)");
  }
  desc_.tied_embeddings = file_.find_tensor("output.weight") == nullptr;
  desc_.layers = uniform_layers(n_layers, l);
  validate_desc(desc_, path);
  for (const GgufTensorInfo& t : file_.tensors())  // more layers than block_count: refused, not silently cut
    if (t.name.rfind("blk.", 0) == 0 && std::atoll(t.name.c_str() + 4) >= n_layers)
      throw std::runtime_error(path + ": metadata key " + p + "block_count: " + std::to_string(n_layers) +
                               ", but the file holds tensor " + t.name);
  if (const GgufTensorInfo* rf = file_.find_tensor("rope_freqs.weight")) {
    const RopeSpec r = fit_llama3_scaling(file_, *rf, desc_.layers[0].attn);
    for (LayerSpec& x : desc_.layers) x.attn.rope = r;
  }

  for (const LogicalTensor& lt : stored_tensors(desc_)) {
    const std::string& canonical = lt.name;
    const std::string name = gguf_tensor_name(canonical);
    const GgufTensorInfo* t = file_.find_tensor(name);
    if (!t) throw std::runtime_error(path + ": tensor " + canonical + " (" + name + "): missing");
    int permute = 0;
    if (arch == "llama") {  // llama.cpp stores llama q/k rows interleaved; qwen2/qwen3 use NeoX RoPE (rotate-half)
      const std::string tail = canonical.substr(canonical.rfind('.') + 1);
      if (tail == "wq") permute = l.attn.n_heads;
      if (tail == "wk") permute = l.attn.n_kv_heads;
    }
    add(canonical, file_.view(*t), path, name, permute);
  }
}

}  // namespace

std::string gguf_tensor_name(const std::string& c) {
  if (c == "tok_embeddings") return "token_embd.weight";
  if (c == "norm") return "output_norm.weight";
  if (c == "output") return "output.weight";
  if (c.rfind("layers.", 0) == 0) {
    const size_t dot = c.find('.', 7);
    const std::string pre = "blk." + c.substr(7, dot - 7) + ".", w = c.substr(dot + 1);
    static const std::map<std::string, std::string> kMap = {
        {"attn_norm", "attn_norm.weight"}, {"ffn_norm", "ffn_norm.weight"}, {"wq", "attn_q.weight"},
        {"wk", "attn_k.weight"},           {"wv", "attn_v.weight"},         {"wo", "attn_output.weight"},
        {"bq", "attn_q.bias"},             {"bk", "attn_k.bias"},           {"bv", "attn_v.bias"},
        {"q_norm", "attn_q_norm.weight"},  {"k_norm", "attn_k_norm.weight"},
        {"w_gate", "ffn_gate.weight"},     {"w_up", "ffn_up.weight"},       {"w_down", "ffn_down.weight"}};
    auto it = kMap.find(w);
    if (it != kMap.end()) return pre + it->second;
  }
  throw std::invalid_argument("no GGUF name for canonical tensor " + c);
}

std::unique_ptr<ModelSource> open_gguf_model(const std::string& path) { return std::make_unique<GgufSource>(path); }

}  // namespace hpcinfer
