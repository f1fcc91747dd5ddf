// Model contract: the architecture as data. Loaders (config.json, GGUF metadata, llama2.c header) fill a ModelDesc;
// block kinds (core/model/blocks) read it to declare their tensors and to run; strategies never see it (they see the
// tensors the block kinds declare, see strategy.hpp). Pure data, no weights.
//
// A model is: token embedding -> layers -> final RMSNorm -> output head. Every layer is pre-norm residual:
//   x += attention(rmsnorm(x));  x += ffn(rmsnorm(x))
// where the attention and the FFN are block kinds named in the layer's LayerSpec (registered by name in the core).
//
// Canonical tensor names (loaders map their file's names onto these; shapes are logical, row-major, rows = output
// features, like Hugging Face nn.Linear weights [out, in]). The model-level ones:
//   tok_embeddings   [vocab, dim]
//   norm             [1, dim]
//   output           [vocab, dim]   (tied_embeddings: the loader serves tok_embeddings under this name)
// and per layer whatever its block kinds declare, e.g. for the "gqa" attention and "swiglu" FFN:
//   layers.{i}.attn_norm [1, dim], wq [n_heads*head_dim, dim], wk/wv [n_kv_heads*head_dim, dim],
//   bq/bk/bv (qkv_bias), q_norm/k_norm [1, head_dim] (qk_norm), wo [dim, n_heads*head_dim],
//   layers.{i}.ffn_norm [1, dim], w_gate/w_up [hidden_dim, dim], w_down [dim, hidden_dim]
// ("palu" attention: wq, wk_down [groups*rank_k, dim], wk_up [n_kv_heads*head_dim, rank_k], wv_down
// [groups*rank_v, dim], wo_latent [dim, n_heads*rank_v] instead of wk / wv / wo)
// Q/K rows are always in the rotate-half RoPE layout of their head unless rope.interleaved says otherwise (loaders
// of interleaved files either permute the rows or set interleaved).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hpcinfer {

// How positions rotate q and k (core/model/rope.cpp turns this into cos/sin tables).
struct RopeSpec {
  std::string type = "default";  // default | linear | llama3 | yarn | none (no rotation)
  float theta = 10000.0f;        // base of the inverse frequencies theta^(-2i/rotary_dim)
  float factor = 1.0f;           // linear: positions divided by it; llama3, yarn: the context extension factor
  float low_freq_factor = 1.0f;  // llama3
  float high_freq_factor = 4.0f; // llama3
  int original_max_position = 0; // llama3, yarn: the context the model was trained at before extension
  float beta_fast = 32.0f;       // yarn: the ramp between extrapolated and interpolated frequencies
  float beta_slow = 1.0f;        // yarn
  float mscale = 0.0f;           // yarn (DeepSeek): cos/sin scale = get_mscale(factor, mscale) / get_mscale(factor,
  float mscale_all_dim = 0.0f;   //   mscale_all_dim) when either is set
  float attention_factor = 0.0f; // yarn: cos/sin scale given directly; 0 = derived (0.1 ln(factor) + 1)
  bool truncate = true;          // yarn: round the ramp's ends to whole dimensions (gpt-oss: false)
  int64_t rotary_dim = 0;        // values of each head that rotate (the first ones); 0 = the whole head
  bool interleaved = false;      // false: rotate-half pairs (i, i + rotary_dim/2); true: adjacent pairs (2i, 2i+1)
};

struct AttentionSpec {
  std::string kind = "gqa";  // block kind: "gqa" = multi-head attention with grouped (GQA) / multi-query (MQA) KV;
                             // "mla" = multi-head latent attention (DeepSeek-V2/V3); "palu" = gqa whose keys and
                             // values are cached as low-rank latents (PaLU, `hpcinfer palu compress`)
  int n_heads = 0;
  int n_kv_heads = 0;        // GQA/MQA when < n_heads; divides n_heads
  int64_t head_dim = 0;
  bool qkv_bias = false;     // q/k/v projections carry biases (Qwen2)
  bool o_bias = false;       // the output projection carries a bias (gpt-oss)
  bool qk_norm = false;      // per-head RMSNorm of q and k before RoPE (Qwen3)
  bool sinks = false;        // one learned logit per head in the softmax denominator only (gpt-oss)
  int sliding_window = 0;    // > 0: a token attends to the last `sliding_window` positions only (itself included)
  float softmax_scale = 0;   // q.k multiplier; 0 = 1/sqrt(the q.k head size)
  // mla: q through a low-rank q_lora_rank (0 = a plain q projection); keys/values from a kv_lora_rank latent plus a
  // shared qk_rope_head_dim RoPE key; per head qk_nope_head_dim + qk_rope_head_dim for q.k, v_head_dim for values.
  // head_dim is unused by mla.
  int64_t q_lora_rank = 0, kv_lora_rank = 0, qk_nope_head_dim = 0, qk_rope_head_dim = 0, v_head_dim = 0;
  // palu: the kv heads in groups of palu_group_size consecutive heads; group g caches palu_rank_k key latents and
  // palu_rank_v value latents per token (wk ~ wk_up_g wk_down_g, wv ~ wv_up_g wv_down_g, wv_up folded into wo).
  int palu_group_size = 0;
  int64_t palu_rank_k = 0, palu_rank_v = 0;
  RopeSpec rope;
};

// How a token picks its experts and their weights.
struct RouterSpec {
  // softmax_topk  softmax over all experts, the top k, renormalised when norm_topk_prob (Mixtral, Qwen3-MoE)
  // topk_softmax  the top k logits, softmax over those k (gpt-oss)
  // sigmoid_group sigmoid scores; choice by score + correction bias within the best topk_group of n_group groups
  //               (groups ranked by the sum of their top-2); weights the unbiased scores, renormalised when
  //               norm_topk_prob, times routed_scaling_factor (DeepSeek-V3)
  std::string kind = "softmax_topk";
  int n_experts = 0;
  int top_k = 0;
  bool norm_topk_prob = false;
  bool bias = false;                  // the router linear has a bias (gpt-oss)
  bool score_correction_bias = false; // sigmoid_group: e_score_correction_bias, used only to choose
  int n_group = 1, topk_group = 1;
  float routed_scaling_factor = 1.0f;
};

struct FfnSpec {
  std::string kind = "swiglu";  // block kind: "swiglu" = w_down(silu(w_gate x) * w_up x); "moe" = routed experts
  int64_t hidden_dim = 0;       // inner size (moe: of each routed expert)
  // moe:
  RouterSpec router;
  int64_t shared_hidden_dim = 0;  // > 0: a shared expert of this inner size every token also goes through
  std::string activation = "silu";  // silu | swiglu_oai: (clamp(up, +-limit) + 1) * g * sigmoid(alpha g), g =
                                    // min(gate, limit) (gpt-oss)
  float swiglu_alpha = 1.702f, swiglu_limit = 7.0f;
  bool expert_bias = false;       // experts' gate/up/down projections carry biases (gpt-oss)
};

struct LayerSpec {
  AttentionSpec attn;
  FfnSpec ffn;
};

struct ModelDesc {
  std::string arch = "llama";  // the family it was read as, for messages: llama, qwen2, qwen3
  int64_t dim = 0;             // residual width
  int64_t vocab = 0;
  int max_seq_len = 2048;
  float norm_eps = 1e-5f;      // every RMSNorm of the model
  bool tied_embeddings = false;
  int bos_id = 1;
  int eos_id = 2;
  std::vector<LayerSpec> layers;  // [n_layers]
  int n_layers() const { return int(layers.size()); }
};

inline std::string layer_tensor(int layer, const char* what) {
  return "layers." + std::to_string(layer) + "." + what;
}

}  // namespace hpcinfer
