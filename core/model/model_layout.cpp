#include "core/model/model_layout.hpp"

#include <cmath>
#include <stdexcept>

#include "core/formats/checked_size.hpp"
#include "core/model/blocks/block.hpp"
#include "core/model/rope.hpp"

namespace hpcinfer {

ModelLayout model_layout(const ModelDesc& d) {
  ModelLayout out;
  out.n_layers = d.n_layers();
  const ShardRule vocab_rows{ShardRule::Axis::rows, "vocab", 1};
  out.tensors.push_back({"tok_embeddings", -1, d.vocab, d.dim, vocab_rows});
  out.anchors.push_back({"embed.out", -1, AnchorDecl::Combine::sum, {"vocab"}});
  for (int i = 0; i < d.n_layers(); ++i) {
    const LayerSpec& l = d.layers[size_t(i)];
    block_kind("attention", l.attn.kind).declare(d, i, out);
    block_kind("ffn", l.ffn.kind).declare(d, i, out);
  }
  out.tensors.push_back({"norm", -1, 1, d.dim, {}});
  out.tensors.push_back({"output", -1, d.vocab, d.dim, vocab_rows});
  out.anchors.push_back({"head.logits", -1, AnchorDecl::Combine::concat_cols, {"vocab"}});
  return out;
}

std::vector<LogicalTensor> stored_tensors(const ModelDesc& d) {
  std::vector<LogicalTensor> out = model_layout(d).tensors;
  if (d.tied_embeddings) std::erase_if(out, [](const LogicalTensor& t) { return t.name == "output"; });
  return out;
}

std::pair<int64_t, int64_t> tensor_shape(const ModelDesc& d, const std::string& name) {
  for (const LogicalTensor& t : model_layout(d).tensors)
    if (t.name == name) return {t.rows, t.cols};
  throw std::invalid_argument("unknown canonical tensor name " + name);
}

namespace {
// Upper bounds on every size a description holds, checked before any product of them is formed: far above any real
// model (Llama 3.1 405B: dim 16384, ffn 53248, vocab 128256; DeepSeek-V3: 256 experts, kv_lora_rank 512), and low
// enough that every tensor's rows x cols product fits in int64_t. A crafted header gets an error naming the key.
constexpr int64_t kMaxWidth = int64_t(1) << 20;      // dim, ffn hidden sizes, LoRA ranks
constexpr int64_t kMaxHeads = int64_t(1) << 14;      // heads, kv heads, head sizes
constexpr int64_t kMaxVocab = int64_t(1) << 24;
constexpr int64_t kMaxContext = int64_t(1) << 24;
constexpr int64_t kMaxExperts = int64_t(1) << 16;
constexpr int64_t kMaxTensorElements = int64_t(1) << 40;  // 1 Ti elements in one tensor
constexpr int64_t kMaxModelElements = int64_t(1) << 44;   // 16 T parameters

void check_bounds(const ModelDesc& d, const std::string& file) {
  auto in = [&](int64_t v, int64_t lo, int64_t hi, const std::string& key) {
    if (v < lo || v > hi)
      throw std::runtime_error(file + ": " + key + ": " + std::to_string(v) + " is out of range [" + std::to_string(lo) +
                               ", " + std::to_string(hi) + "]");
  };
  in(d.dim, 1, kMaxWidth, "dim");
  in(d.n_layers(), 1, 1 << 16, "n_layers");
  in(d.vocab, 1, kMaxVocab, "vocab");
  in(d.max_seq_len, 1, kMaxContext, "max_seq_len");
  in(d.bos_id, 0, d.vocab - 1, "bos_token_id (must be a token of the vocabulary)");
  in(d.eos_id, 0, d.vocab - 1, "eos_token_id (must be a token of the vocabulary)");
  if (!std::isfinite(d.norm_eps) || !(d.norm_eps > 0) || d.norm_eps >= 1)
    throw std::runtime_error(file + ": rms_norm_eps: must be in (0, 1), got " + std::to_string(d.norm_eps));
  for (int i = 0; i < d.n_layers(); ++i) {
    const LayerSpec& l = d.layers[size_t(i)];
    const std::string at = "layer " + std::to_string(i) + " ";
    in(l.attn.n_heads, 0, kMaxHeads, at + "n_heads");
    in(l.attn.n_kv_heads, 0, kMaxHeads, at + "n_kv_heads");
    for (auto [v, key] : {std::pair{l.attn.head_dim, "head_dim"}, {l.attn.qk_nope_head_dim, "qk_nope_head_dim"},
                          {l.attn.qk_rope_head_dim, "qk_rope_head_dim"}, {l.attn.v_head_dim, "v_head_dim"}})
      in(v, 0, kMaxHeads, at + key);
    for (auto [v, key] : {std::pair{l.attn.q_lora_rank, "q_lora_rank"}, {l.attn.kv_lora_rank, "kv_lora_rank"},
                          {l.attn.palu_rank_k, "palu rank_k"}, {l.attn.palu_rank_v, "palu rank_v"},
                          {l.ffn.hidden_dim, "hidden_dim"}, {l.ffn.shared_hidden_dim, "shared_hidden_dim"}})
      in(v, 0, kMaxWidth, at + key);
    in(l.attn.sliding_window, 0, kMaxContext, at + "sliding_window");
    in(l.ffn.router.n_experts, 0, kMaxExperts, at + "n_experts");
  }
}
}  // namespace

void validate_desc(const ModelDesc& d, const std::string& file) {
  auto need = [&](bool ok, const std::string& key, const std::string& why) {
    if (!ok) throw std::runtime_error(file + ": " + key + ": " + why);
  };
  need(d.dim > 0, "dim", "must be positive, got " + std::to_string(d.dim));
  need(d.n_layers() > 0, "n_layers", "must be positive, got " + std::to_string(d.n_layers()));
  need(d.vocab > 0, "vocab", "must be positive, got " + std::to_string(d.vocab));
  need(d.max_seq_len > 0, "max_seq_len", "must be positive, got " + std::to_string(d.max_seq_len));
  check_bounds(d, file);
  for (int i = 0; i < d.n_layers(); ++i) {
    const LayerSpec& l = d.layers[size_t(i)];
    try {
      block_kind("attention", l.attn.kind).validate(d, i);
      block_kind("ffn", l.ffn.kind).validate(d, i);
      validate_rope(l.attn.rope, l.attn.head_dim);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(file + ": " + e.what());
    }
  }
  // Every tensor's size, and the model's, with products that cannot wrap (the bounds above keep each factor small).
  int64_t total = 0;
  for (const LogicalTensor& t : model_layout(d).tensors)
    total = checked_sum(total, checked_product({t.rows, t.cols}, file + ": tensor " + t.name, kMaxTensorElements),
                        file + ": the model's parameter count");
  need(total <= kMaxModelElements, "parameters", std::to_string(total) + " is more than any model this engine runs");
}

std::vector<LayerSpec> uniform_layers(int n, const LayerSpec& layer) {
  return std::vector<LayerSpec>(size_t(std::max(n, 0)), layer);
}

}  // namespace hpcinfer
