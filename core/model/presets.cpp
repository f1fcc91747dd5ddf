#include "core/model/presets.hpp"

#include <cmath>

#include "core/model/hf_source.hpp"
#include "core/model/model_layout.hpp"

namespace hpcinfer {
namespace {

// dim, hidden, layers, heads, kv heads, vocab, max_seq, eps, theta, tied, bos, eos (head_dim = dim / heads).
ModelDesc make(int64_t dim, int64_t hidden, int layers, int heads, int kv, int64_t vocab, int max_seq, float eps,
               float theta, bool tied, int bos, int eos) {
  ModelDesc d;
  d.dim = dim;
  d.vocab = vocab;
  d.max_seq_len = max_seq;
  d.norm_eps = eps;
  d.tied_embeddings = tied;
  d.bos_id = bos;
  d.eos_id = eos;
  LayerSpec l;
  l.ffn.hidden_dim = hidden;
  l.attn.n_heads = heads;
  l.attn.n_kv_heads = kv;
  l.attn.head_dim = dim / heads;
  l.attn.rope.theta = theta;
  d.layers = uniform_layers(layers, l);
  return d;
}

ModelDesc llama3_scaled(ModelDesc d, float factor) {  // Llama 3.1 / 3.2 "rope_type": "llama3"
  for (LayerSpec& l : d.layers) {
    l.attn.rope.type = "llama3";
    l.attn.rope.factor = factor;
    l.attn.rope.low_freq_factor = 1.0f;
    l.attn.rope.high_freq_factor = 4.0f;
    l.attn.rope.original_max_position = 8192;
  }
  return d;
}

// A preset read from the keys of a published config.json (the same reader as a checkpoint's).
ModelDesc from_config(const char* json) { return parse_hf_config(nlohmann::json::parse(json), "preset config.json"); }

// MoE shapes, config.json keys as published (the values that matter for shapes and routing).
const char* kMixtral8x7b = R"({"architectures": ["MixtralForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
  "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000,
  "max_position_embeddings": 32768, "rms_norm_eps": 1e-5, "rope_theta": 1000000.0, "num_local_experts": 8,
  "num_experts_per_tok": 2, "tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": 2})";
const char* kQwen3_30bA3b = R"({"architectures": ["Qwen3MoeForCausalLM"], "hidden_size": 2048, "intermediate_size": 6144,
  "moe_intermediate_size": 768, "num_hidden_layers": 48, "num_attention_heads": 32, "num_key_value_heads": 4,
  "head_dim": 128, "vocab_size": 151936, "max_position_embeddings": 40960, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
  "num_experts": 128, "num_experts_per_tok": 8, "norm_topk_prob": true, "decoder_sparse_step": 1, "mlp_only_layers": [],
  "attention_bias": false, "tie_word_embeddings": false, "bos_token_id": 151643, "eos_token_id": 151645})";
// The same layer shape, two layers: a random-weight MoE for benchmarks (2.5 GB in bf16).
const char* kQwen3MoeBench = R"({"architectures": ["Qwen3MoeForCausalLM"], "hidden_size": 2048, "intermediate_size": 6144,
  "moe_intermediate_size": 768, "num_hidden_layers": 2, "num_attention_heads": 32, "num_key_value_heads": 4,
  "head_dim": 128, "vocab_size": 151936, "max_position_embeddings": 40960, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
  "num_experts": 128, "num_experts_per_tok": 8, "norm_topk_prob": true, "decoder_sparse_step": 1, "mlp_only_layers": [],
  "attention_bias": false, "tie_word_embeddings": false, "bos_token_id": 151643, "eos_token_id": 151645})";
const char* kGptOss120b = R"({"architectures": ["GptOssForCausalLM"], "hidden_size": 2880, "intermediate_size": 2880,
  "num_hidden_layers": 36, "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 64, "vocab_size": 201088,
  "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "num_local_experts": 128, "num_experts_per_tok": 4,
  "sliding_window": 128, "layer_types": LAYER_TYPES_36, "attention_bias": true, "swiglu_limit": 7.0,
  "rope_scaling": {"rope_type": "yarn", "factor": 32.0, "original_max_position_embeddings": 4096, "beta_fast": 32.0,
                   "beta_slow": 1.0, "truncate": false},
  "rope_theta": 150000.0, "tie_word_embeddings": false, "bos_token_id": 199998, "eos_token_id": 200002})";
const char* kDeepseekV3 = R"({"architectures": ["DeepseekV3ForCausalLM"], "hidden_size": 7168, "intermediate_size": 18432,
  "moe_intermediate_size": 2048, "num_hidden_layers": 61, "num_attention_heads": 128, "num_key_value_heads": 128,
  "q_lora_rank": 1536, "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
  "vocab_size": 129280, "max_position_embeddings": 163840, "rms_norm_eps": 1e-6, "n_routed_experts": 256,
  "n_shared_experts": 1, "num_experts_per_tok": 8, "n_group": 8, "topk_group": 4, "routed_scaling_factor": 2.5,
  "norm_topk_prob": true, "first_k_dense_replace": 3, "scoring_func": "sigmoid", "topk_method": "noaux_tc",
  "rope_theta": 10000, "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
  "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
  "tie_word_embeddings": false, "bos_token_id": 0, "eos_token_id": 1})";

std::string alternating_layer_types(int n) {  // gpt-oss: sliding, full, sliding, ...
  std::string s = "[";
  for (int i = 0; i < n; ++i) s += std::string(i ? ", " : "") + (i % 2 ? "\"full_attention\"" : "\"sliding_attention\"");
  return s + "]";
}
ModelDesc gpt_oss(int layers, int experts) {
  std::string c = kGptOss120b;
  auto set = [&c](const std::string& from, const std::string& to) { c.replace(c.find(from), from.size(), to); };
  set("LAYER_TYPES_36", alternating_layer_types(layers));
  set("\"num_hidden_layers\": 36", "\"num_hidden_layers\": " + std::to_string(layers));
  set("\"num_local_experts\": 128", "\"num_local_experts\": " + std::to_string(experts));
  return from_config(c.c_str());
}

std::vector<ModelPreset> build() {
  std::vector<ModelPreset> p;
  // Real shapes, from each model's published Hugging Face config.json.
  p.push_back({"tinyllama-1.1b", make(2048, 5632, 22, 32, 4, 32000, 2048, 1e-5f, 10000.0f, false, 1, 2),
               "TinyLlama/TinyLlama-1.1B-Chat-v1.0 config.json", false});
  p.push_back({"llama-2-7b", make(4096, 11008, 32, 32, 32, 32000, 4096, 1e-5f, 10000.0f, false, 1, 2),
               "meta-llama/Llama-2-7b-hf config.json", false});
  p.push_back({"llama-3-8b", make(4096, 14336, 32, 32, 8, 128256, 8192, 1e-5f, 500000.0f, false, 128000, 128001),
               "meta-llama/Meta-Llama-3-8B config.json", false});
  p.push_back({"llama-3.1-8b",
               llama3_scaled(make(4096, 14336, 32, 32, 8, 128256, 131072, 1e-5f, 500000.0f, false, 128000, 128001), 8.0f),
               "meta-llama/Llama-3.1-8B config.json (rope_scaling llama3, factor 8)", false});
  p.push_back({"llama-3.2-1b",
               llama3_scaled(make(2048, 8192, 16, 32, 8, 128256, 131072, 1e-5f, 500000.0f, true, 128000, 128001), 32.0f),
               "meta-llama/Llama-3.2-1B config.json (tied embeddings, rope_scaling llama3, factor 32)", false});
  p.push_back({"llama-3-70b", make(8192, 28672, 80, 64, 8, 128256, 8192, 1e-5f, 500000.0f, false, 128000, 128001),
               "meta-llama/Meta-Llama-3-70B config.json", true});
  p.push_back({"openllama-3b", make(3200, 8640, 26, 32, 32, 32000, 2048, 1e-6f, 10000.0f, false, 1, 2),
               "openlm-research/open_llama_3b config.json", false});
  p.push_back({"openllama-7b", make(4096, 11008, 32, 32, 32, 32000, 2048, 1e-6f, 10000.0f, false, 1, 2),
               "openlm-research/open_llama_7b config.json", false});
  p.push_back({"smollm2-135m", make(576, 1536, 30, 9, 3, 49152, 8192, 1e-5f, 100000.0f, true, 0, 0),
               "HuggingFaceTB/SmolLM2-135M config.json", false});
  // MoE shapes (config-only by default: make-model writes their weights with --weights where the family's tensors are
  // written one per expert: Mixtral, Qwen3-MoE).
  p.push_back({"mixtral-8x7b", from_config(kMixtral8x7b), "mistralai/Mixtral-8x7B-v0.1 config.json", true});
  p.push_back({"qwen3-30b-a3b", from_config(kQwen3_30bA3b), "Qwen/Qwen3-30B-A3B config.json", true});
  p.push_back({"qwen3-moe-2l", from_config(kQwen3MoeBench),
               "Qwen/Qwen3-30B-A3B's layer shape, 2 layers: a random-weight MoE for benchmarks", false});
  p.push_back({"gpt-oss-120b", gpt_oss(36, 128), "openai/gpt-oss-120b config.json", true});
  p.push_back({"gpt-oss-20b", gpt_oss(24, 32), "openai/gpt-oss-20b config.json", true});
  p.push_back({"deepseek-v3", from_config(kDeepseekV3),
               "deepseek-ai/DeepSeek-V3 config.json (V3.1: the same shapes; the MTP layer left out)", true});
  // Test shapes: small, fast, and each stressing one thing (row lengths stay multiples of 32 for block formats).
  p.push_back({"tiny-gqa", make(64, 160, 3, 4, 2, 512, 256, 1e-5f, 10000.0f, false, 1, 2),
               "test shape: GQA (4 heads, 2 kv heads)", false});
  p.push_back({"tiny-odd", make(96, 224, 5, 3, 1, 509, 256, 1e-5f, 10000.0f, false, 1, 2),
               "test shape: MQA (1 kv head), 3 heads, odd layer count, prime vocab", false});
  ModelDesc q = make(64, 192, 2, 4, 2, 512, 256, 1e-6f, 1000000.0f, true, 1, 2);
  q.arch = "qwen2";
  for (LayerSpec& l : q.layers) l.attn.qkv_bias = true;
  p.push_back({"tiny-qwen2", q, "test shape: Qwen2 (q/k/v biases, tied embeddings)", false});
  ModelDesc q3 = make(64, 192, 2, 4, 2, 512, 256, 1e-6f, 1000000.0f, false, 1, 2);
  q3.arch = "qwen3";
  for (LayerSpec& l : q3.layers) l.attn.qk_norm = true, l.attn.head_dim = 32;
  p.push_back({"tiny-qwen3", q3, "test shape: Qwen3 (per-head q/k norms, head_dim 32 > dim / heads)", false});
  return p;
}

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

}  // namespace

const std::vector<ModelPreset>& model_presets() {
  static const std::vector<ModelPreset> kPresets = build();
  return kPresets;
}

const ModelPreset* find_preset(const std::string& name) {
  for (const auto& p : model_presets())
    if (p.name == name) return &p;
  return nullptr;
}

int64_t param_count(const ModelDesc& d) {
  int64_t n = 0;
  for (const LogicalTensor& t : stored_tensors(d)) n += t.rows * t.cols;
  return n;
}

void random_weight_rows(uint64_t seed, const std::string& canonical, int64_t row_begin, int64_t row_end, int64_t cols,
                        float* out) {
  const size_t n = size_t((row_end - row_begin) * cols);
  const bool is_norm = canonical == "norm" || canonical.ends_with("_norm");
  if (is_norm) {
    for (size_t i = 0; i < n; ++i) out[i] = 1.0f;
    return;
  }
  // Sum of four 16-bit uniforms: mean 2, variance 4/12; scaled to standard deviation 0.02.
  const float scale = 0.02f * std::sqrt(3.0f);
  const uint64_t base = seed * 0x9e3779b97f4a7c15ull ^ fnv1a(canonical);
  for (int64_t r = row_begin; r < row_end; ++r) {
    uint64_t s = base + uint64_t(r) * 0xd1b54a32d192ed03ull;
    float* o = out + (r - row_begin) * cols;
    for (int64_t c = 0; c < cols; ++c) {
      const uint64_t x = splitmix64(s);
      const float sum = float(x & 0xffff) + float((x >> 16) & 0xffff) + float((x >> 32) & 0xffff) + float(x >> 48);
      o[c] = (sum * (1.0f / 65536.0f) - 2.0f) * scale;
    }
  }
}

}  // namespace hpcinfer
