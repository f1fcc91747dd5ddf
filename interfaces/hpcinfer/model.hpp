// Model contract: the architecture description that loaders fill in and strategies read. Pure data, no weights.
//
// Canonical tensor names (every loader maps its file's names onto these; shapes are logical, row-major, rows =
// output features, exactly like Hugging Face nn.Linear weights [out, in]):
//   tok_embeddings            [vocab, dim]
//   layers.{i}.attn_norm      [dim]
//   layers.{i}.wq             [n_heads * head_dim, dim]      (rotate-half RoPE layout: loaders permute if needed)
//   layers.{i}.wk             [n_kv_heads * head_dim, dim]
//   layers.{i}.wv             [n_kv_heads * head_dim, dim]
//   layers.{i}.bq/bk/bv       [n_heads*head_dim] / [n_kv_heads*head_dim]   (only when qkv_bias, e.g. Qwen2)
//   layers.{i}.wo             [dim, n_heads * head_dim]
//   layers.{i}.ffn_norm       [dim]
//   layers.{i}.w_gate         [hidden_dim, dim]   (w1)
//   layers.{i}.w_up           [hidden_dim, dim]   (w3)
//   layers.{i}.w_down         [dim, hidden_dim]   (w2)
//   norm                      [dim]
//   output                    [vocab, dim]        (absent when tied_embeddings: tok_embeddings is used)
#pragma once

#include <cstdint>
#include <string>

namespace hpcinfer {

struct RopeScaling {  // Llama-3 style "rope_type": "llama3"; factor == 0 means none
  float factor = 0.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int original_max_position = 8192;
};

struct ModelDesc {
  std::string arch = "llama";  // "llama" (Llama 1/2/3, Mistral, OpenLLaMA, TinyLlama, SmolLM2) or "qwen2"
  int64_t dim = 0;
  int64_t hidden_dim = 0;  // FFN inner size
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;      // GQA/MQA when < n_heads
  int64_t head_dim = 0;    // usually dim / n_heads
  int64_t vocab = 0;
  int max_seq_len = 2048;
  float norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling;
  bool tied_embeddings = false;
  bool qkv_bias = false;
  int bos_id = 1;
  int eos_id = 2;
};

inline std::string layer_tensor(int layer, const char* what) {
  return "layers." + std::to_string(layer) + "." + what;
}

}  // namespace hpcinfer
