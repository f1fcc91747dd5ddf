#include "core/model/gguf_source.hpp"

#include <cmath>
#include <map>
#include <stdexcept>

#include "core/formats/gguf.hpp"
#include "core/model/base_source.hpp"

namespace hpcinfer {
namespace {

// Llama 3.1+ GGUF files carry RoPE scaling as a per-frequency factor table (rope_freqs.weight [head_dim / 2]), built
// by llama.cpp's converter from the "llama3" rope_scaling parameters. Recover those parameters by matching the table
// against the published settings (factor 8 / 16 / 32, low 1, high 4, original 8192); throws naming the file if none fits.
RopeScaling fit_llama3_scaling(const GgufFile& f, const GgufTensorInfo& t, const ModelDesc& d) {
  const std::string where = f.path() + ": tensor rope_freqs.weight";
  if (t.dtype != DType::f32 || t.dims.size() != 1 || t.dims[0] != d.head_dim / 2)
    throw std::runtime_error(where + ": expected f32 [" + std::to_string(d.head_dim / 2) + "]");
  const float* table = static_cast<const float*>(f.view(t).data);
  for (float factor : {8.0f, 16.0f, 32.0f, 4.0f, 2.0f}) {
    RopeScaling rs;
    rs.factor = factor;
    rs.low_freq_factor = 1.0f;
    rs.high_freq_factor = 4.0f;
    rs.original_max_position = 8192;
    const double low_wavelen = rs.original_max_position / rs.low_freq_factor;
    const double high_wavelen = rs.original_max_position / rs.high_freq_factor;
    bool ok = true;
    for (int64_t i = 0; i < d.head_dim / 2 && ok; ++i) {
      const double freq = std::pow(double(d.rope_theta), -2.0 * double(i) / double(d.head_dim));
      const double wavelen = 2.0 * M_PI / freq;
      double want = 1.0;
      if (wavelen > low_wavelen) {
        want = factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = (rs.original_max_position / wavelen - rs.low_freq_factor) /
                              (rs.high_freq_factor - rs.low_freq_factor);
        want = 1.0 / ((1.0 - smooth) / factor + smooth);
      }
      ok = std::fabs(table[i] - want) <= 1e-3 * want;
    }
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
  if (arch != "llama" && arch != "qwen2")
    throw std::runtime_error(path + ": metadata key general.architecture: unsupported architecture '" + arch +
                             "' (supported: llama, qwen2)");
  const std::string p = arch + ".";
  desc_.arch = arch;
  desc_.qkv_bias = arch == "qwen2";
  desc_.dim = file_.get_int(p + "embedding_length");
  desc_.hidden_dim = file_.get_int(p + "feed_forward_length");
  desc_.n_layers = int(file_.get_int(p + "block_count"));
  desc_.n_heads = int(file_.get_int(p + "attention.head_count"));
  desc_.n_kv_heads = int(file_.get_int_or(p + "attention.head_count_kv", desc_.n_heads));
  desc_.head_dim = file_.get_int_or(p + "attention.key_length", desc_.n_heads > 0 ? desc_.dim / desc_.n_heads : 0);
  desc_.norm_eps = float(file_.get_float_or(p + "attention.layer_norm_rms_epsilon", 1e-5));
  desc_.rope_theta = float(file_.get_float_or(p + "rope.freq_base", 10000.0));
  desc_.max_seq_len = int(file_.get_int_or(p + "context_length", 2048));
  desc_.bos_id = int(file_.get_int_or("tokenizer.ggml.bos_token_id", 1));
  desc_.eos_id = int(file_.get_int_or("tokenizer.ggml.eos_token_id", 2));
  has_vocab_ = file_.has("tokenizer.ggml.tokens");
  if (file_.has(p + "vocab_size")) {
    desc_.vocab = file_.get_int(p + "vocab_size");
  } else if (has_vocab_) {
    desc_.vocab = int64_t(file_.get_string_array("tokenizer.ggml.tokens").size());
  } else if (const GgufTensorInfo* e = file_.find_tensor("token_embd.weight")) {
    desc_.vocab = e->rows();
  }
  if (int64_t rot = file_.get_int_or(p + "rope.dimension_count", desc_.head_dim); rot != desc_.head_dim)
    throw std::runtime_error(path + ": metadata key " + p + "rope.dimension_count: partial rotary (" + std::to_string(rot) +
                             " of head_dim " + std::to_string(desc_.head_dim) + ") is not supported");
  if (const std::string st = file_.get_string_or(p + "rope.scaling.type", "none"); st != "none" && st != "llama3")
    throw std::runtime_error(path + ": metadata key " + p + "rope.scaling.type: '" + st + "' is not supported");
  desc_.tied_embeddings = file_.find_tensor("output.weight") == nullptr;
  validate_desc(desc_, path);
  if (const GgufTensorInfo* rf = file_.find_tensor("rope_freqs.weight"))
    desc_.rope_scaling = fit_llama3_scaling(file_, *rf, desc_);

  for (const auto& canonical : canonical_tensor_names(desc_)) {
    const std::string name = gguf_tensor_name(canonical);
    const GgufTensorInfo* t = file_.find_tensor(name);
    if (!t) throw std::runtime_error(path + ": tensor " + canonical + " (" + name + "): missing");
    int permute = 0;
    if (arch == "llama") {
      const std::string tail = canonical.substr(canonical.rfind('.') + 1);
      if (tail == "wq") permute = desc_.n_heads;
      if (tail == "wk") permute = desc_.n_kv_heads;
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
        {"w_gate", "ffn_gate.weight"},     {"w_up", "ffn_up.weight"},       {"w_down", "ffn_down.weight"}};
    auto it = kMap.find(w);
    if (it != kMap.end()) return pre + it->second;
  }
  throw std::invalid_argument("no GGUF name for canonical tensor " + c);
}

std::unique_ptr<ModelSource> open_gguf_model(const std::string& path) { return std::make_unique<GgufSource>(path); }

}  // namespace hpcinfer
