// config.json <-> ModelDesc. Architectures and the keys each reads are listed in hf_source.hpp.
// RoPE settings come in two forms: transformers >= 5 writes `rope_parameters: {rope_theta, rope_type, factor, ...}`
// (or one such object per layer type, keyed like `layer_types`); transformers 4 wrote top-level `rope_theta` and
// `rope_scaling: {rope_type | type, factor, ...}`. Both are read; a key inside either object that the engine does not
// understand is an error naming it, never ignored (a wrong theta silently gives wrong logits).
#include <cmath>
#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <limits>
#include <type_traits>
#include <set>
#include <stdexcept>

#include "core/model/hf_source.hpp"
#include "core/model/model_layout.hpp"
#include "core/model/rope.hpp"
#include "core/palu/palu_config.hpp"

using nlohmann::json;

namespace hpcinfer {
namespace {

// Typed access with errors naming the file and key (`path` is the key's full dotted path for messages).
template <typename T>
T get(const json& j, const char* key, const std::string& file, const std::string& path = "") {
  const std::string where = path.empty() ? key : path + "." + key;
  if (!j.contains(key) || j.at(key).is_null()) throw std::runtime_error(file + ": key " + where + " is missing");
  try {
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      // nlohmann converts 1e10 or 2^40 to int by a cast that wraps: a whole number in T's range, or an error.
      const json& v = j.at(key);
      if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)))
        throw std::runtime_error(file + ": key " + where + " must be a whole number, got " + v.dump());
      const int64_t x = v.get<int64_t>();
      if (x < int64_t(std::numeric_limits<T>::min()) || x > int64_t(std::numeric_limits<T>::max()))
        throw std::runtime_error(file + ": key " + where + ": " + v.dump() + " is out of range");
      return T(x);
    } else {
      return j.at(key).get<T>();
    }
  } catch (const json::exception&) {
    throw std::runtime_error(file + ": key " + where + " has the wrong type (" + j.at(key).dump() + ")");
  }
}
template <typename T>
T get_or(const json& j, const char* key, T fallback, const std::string& file, const std::string& path = "") {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  return get<T>(j, key, file, path);
}
int token_id(const json& j, const char* key, int fallback, const std::string& file) {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  const json& v = j.at(key);
  if (v.is_array()) {
    if (v.empty() || !v[0].is_number_integer() || v[0].get<int64_t>() < 0 || v[0].get<int64_t>() > INT32_MAX)
      throw std::runtime_error(file + ": key " + std::string(key) + ": expected token ids, got " + v.dump());
    return v[0].get<int>();
  }
  return get<int>(j, key, file);
}

// One RoPE object (rope_parameters or rope_scaling) over `base`; `path` names it in messages.
RopeSpec read_rope_object(const json& r, RopeSpec base, const std::string& file, const std::string& path,
                          int max_position) {
  static const std::set<std::string> kKnown = {
      "rope_theta", "rope_type", "type", "factor", "low_freq_factor", "high_freq_factor",
      "original_max_position_embeddings", "beta_fast", "beta_slow", "mscale", "mscale_all_dim", "attention_factor",
      "truncate", "partial_rotary_factor"};
  if (!r.is_object()) throw std::runtime_error(file + ": key " + path + ": expected an object, got " + r.dump());
  for (auto it = r.begin(); it != r.end(); ++it)
    if (!kKnown.count(it.key()))
      throw std::runtime_error(file + ": key " + path + "." + it.key() +
                               ": not understood by hpcinfer (RoPE keys it reads: rope_theta, rope_type, factor, "
                               "low_freq_factor, high_freq_factor, original_max_position_embeddings, beta_fast, "
                               "beta_slow, mscale, mscale_all_dim, attention_factor, truncate, partial_rotary_factor)");
  RopeSpec s = base;
  s.theta = get_or<float>(r, "rope_theta", s.theta, file, path);
  s.type = get_or<std::string>(r, "rope_type", get_or<std::string>(r, "type", "default", file, path), file, path);
  if (s.type != "default" && s.type != "linear" && s.type != "llama3" && s.type != "yarn")
    throw std::runtime_error(file + ": key " + path + ".rope_type: unsupported '" + s.type +
                             "' (supported: default, linear, llama3, yarn)");
  if (s.type == "default") return s;
  s.factor = get<float>(r, "factor", file, path);
  if (s.type == "llama3") {
    s.low_freq_factor = get<float>(r, "low_freq_factor", file, path);
    s.high_freq_factor = get<float>(r, "high_freq_factor", file, path);
    s.original_max_position = get<int>(r, "original_max_position_embeddings", file, path);
  }
  if (s.type == "yarn") {
    s.original_max_position = get_or<int>(r, "original_max_position_embeddings", max_position, file, path);
    s.beta_fast = get_or<float>(r, "beta_fast", 32.0f, file, path);
    s.beta_slow = get_or<float>(r, "beta_slow", 1.0f, file, path);
    s.mscale = get_or<float>(r, "mscale", 0.0f, file, path);
    s.mscale_all_dim = get_or<float>(r, "mscale_all_dim", 0.0f, file, path);
    s.attention_factor = get_or<float>(r, "attention_factor", 0.0f, file, path);
    s.truncate = get_or<bool>(r, "truncate", true, file, path);
  }
  return s;
}

// The RoPE spec of every layer: `layer_types[i]` picks a per-type object when rope_parameters has them.
std::vector<RopeSpec> read_rope(const json& j, int n_layers, int64_t head_dim, const std::string& file) {
  const int max_position = get_or<int>(j, "max_position_embeddings", 2048, file);
  RopeSpec base;
  base.theta = get_or<float>(j, "rope_theta", 10000.0f, file);
  base.interleaved = get_or<bool>(j, "rope_interleave", false, file);
  float partial = get_or<float>(j, "partial_rotary_factor", 1.0f, file);
  std::vector<RopeSpec> out(size_t(n_layers), base);
  const bool has_params = j.contains("rope_parameters") && !j["rope_parameters"].is_null();
  const bool has_scaling = j.contains("rope_scaling") && !j["rope_scaling"].is_null();
  if (has_params) {
    const json& r = j["rope_parameters"];
    const bool per_type = r.is_object() && !r.empty() && r.begin().value().is_object();
    if (per_type) {  // {"full_attention": {...}, "sliding_attention": {...}}, chosen by layer_types
      if (!j.contains("layer_types") || !j["layer_types"].is_array() || int(j["layer_types"].size()) != n_layers)
        throw std::runtime_error(file + ": key rope_parameters has one object per layer type, but layer_types is "
                                 "missing or does not have num_hidden_layers entries");
      for (int i = 0; i < n_layers; ++i) {
        const std::string t = j["layer_types"][size_t(i)].get<std::string>();
        if (!r.contains(t))
          throw std::runtime_error(file + ": key rope_parameters." + t + " is missing (layer_types[" +
                                   std::to_string(i) + "] names it)");
        out[size_t(i)] = read_rope_object(r[t], base, file, "rope_parameters." + t, max_position);
      }
    } else {
      const RopeSpec s = read_rope_object(r, base, file, "rope_parameters", max_position);
      if (j.contains("rope_theta") && !j["rope_theta"].is_null() && r.contains("rope_theta") &&
          get<float>(j, "rope_theta", file) != s.theta)
        throw std::runtime_error(file + ": keys rope_theta and rope_parameters.rope_theta disagree (" +
                                 j["rope_theta"].dump() + " vs " + r["rope_theta"].dump() + ")");
      std::fill(out.begin(), out.end(), s);
    }
    if (has_scaling)
      throw std::runtime_error(file + ": keys rope_parameters and rope_scaling are both set: one form only "
                               "(transformers 5 writes rope_parameters, transformers 4 rope_scaling)");
    if (r.is_object() && r.contains("partial_rotary_factor")) partial = get<float>(r, "partial_rotary_factor", file, "rope_parameters");
  } else if (has_scaling) {
    const RopeSpec s = read_rope_object(j["rope_scaling"], base, file, "rope_scaling", max_position);
    std::fill(out.begin(), out.end(), s);
  }
  if (!(partial > 0 && partial <= 1))
    throw std::runtime_error(file + ": key partial_rotary_factor: must be in (0, 1], got " + std::to_string(partial));
  for (RopeSpec& s : out) s.rotary_dim = partial < 1 ? int64_t(std::lround(double(head_dim) * partial)) : 0;
  return out;
}

// 1e-5f prints as 9.999999747378752e-06 when widened; write the shortest decimal that reads back to the same float.
double tidy(float f) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.7g", double(f));
  return std::strtod(buf, nullptr);
}

// rope_scaling in transformers 4's form (null for the default type).
json rope_scaling_json(const RopeSpec& s) {
  if (s.type == "default") return nullptr;
  json r = {{"rope_type", s.type}, {"factor", tidy(s.factor)}};
  if (s.type == "llama3") {
    r["low_freq_factor"] = tidy(s.low_freq_factor);
    r["high_freq_factor"] = tidy(s.high_freq_factor);
    r["original_max_position_embeddings"] = s.original_max_position;
  }
  if (s.type == "yarn") {
    r["original_max_position_embeddings"] = s.original_max_position;
    r["beta_fast"] = tidy(s.beta_fast);
    r["beta_slow"] = tidy(s.beta_slow);
    if (s.mscale > 0) r["mscale"] = tidy(s.mscale);
    if (s.mscale_all_dim > 0) r["mscale_all_dim"] = tidy(s.mscale_all_dim);
    if (s.attention_factor > 0) r["attention_factor"] = tidy(s.attention_factor);
    if (!s.truncate) r["truncate"] = false;
  }
  return r;
}

}  // namespace

namespace {

// What each architecture adds to the common keys: its family name (ModelDesc::arch) and its layers' specs.
// `l` arrives with the common attention / FFN keys read; the reader may change each layer after uniform_layers.
struct ArchReader {
  const char* hf_name;   // architectures[0]
  const char* model_type;
  const char* family;
  void (*read)(const json& j, const std::string& file, ModelDesc& d);
};

void no_attention_bias(const json& j, const std::string& file, const char* what) {
  if (get_or<bool>(j, "attention_bias", false, file))
    throw std::runtime_error(file + ": key attention_bias: " + what + " attention biases (q/k/v/o) are not supported");
}

void read_llama(const json& j, const std::string& file, ModelDesc& d) {
  no_attention_bias(j, file, "Llama");
  for (LayerSpec& l : d.layers) l.attn.sliding_window = get_or<int>(j, "sliding_window", 0, file);  // Mistral 7B v0.1
}

void no_qwen_window(const json& j, const std::string& file) {
  if (get_or<bool>(j, "use_sliding_window", false, file))
    throw std::runtime_error(file + ": key use_sliding_window: Qwen sliding-window layers are not supported");
}

void read_qwen2(const json& j, const std::string& file, ModelDesc& d) {
  no_qwen_window(j, file);
  for (LayerSpec& l : d.layers) l.attn.qkv_bias = true;
}

void read_qwen3(const json& j, const std::string& file, ModelDesc& d) {
  no_qwen_window(j, file);
  for (LayerSpec& l : d.layers) {
    l.attn.qkv_bias = get_or<bool>(j, "attention_bias", false, file);
    l.attn.qk_norm = true;
  }
}

// Routed experts with softmax over all experts, then the top k (Mixtral, Qwen3-MoE).
FfnSpec softmax_moe(const json& j, const std::string& file, int64_t hidden, bool renormalise) {
  FfnSpec f;
  f.kind = "moe";
  f.hidden_dim = hidden;
  f.router.kind = "softmax_topk";
  f.router.n_experts = j.contains("num_experts") ? get<int>(j, "num_experts", file) : get<int>(j, "num_local_experts", file);
  f.router.top_k = get<int>(j, "num_experts_per_tok", file);
  f.router.norm_topk_prob = renormalise;
  return f;
}

void read_mixtral(const json& j, const std::string& file, ModelDesc& d) {
  no_attention_bias(j, file, "Mixtral");
  const FfnSpec moe = softmax_moe(j, file, get<int64_t>(j, "intermediate_size", file), true);  // always renormalised
  for (LayerSpec& l : d.layers) {
    l.attn.sliding_window = get_or<int>(j, "sliding_window", 0, file);
    l.ffn = moe;
  }
}

void read_qwen3_moe(const json& j, const std::string& file, ModelDesc& d) {
  read_qwen3(j, file, d);
  const FfnSpec moe = softmax_moe(j, file, get<int64_t>(j, "moe_intermediate_size", file),
                                  get_or<bool>(j, "norm_topk_prob", false, file));
  const int step = get_or<int>(j, "decoder_sparse_step", 1, file);
  std::vector<int> dense_layers;
  if (j.contains("mlp_only_layers") && !j["mlp_only_layers"].is_null()) dense_layers = get<std::vector<int>>(j, "mlp_only_layers", file);
  if (step < 1) throw std::runtime_error(file + ": key decoder_sparse_step: must be >= 1, got " + std::to_string(step));
  for (int i = 0; i < d.n_layers(); ++i) {  // transformers: MoE where not listed and (i + 1) % step == 0
    const bool dense = std::find(dense_layers.begin(), dense_layers.end(), i) != dense_layers.end() || (i + 1) % step;
    if (!dense) d.layers[size_t(i)].ffn = moe;
  }
}

// gpt-oss: q/k/v/o biases, sinks, sliding-window and full layers (layer_types), MoE with a biased router (softmax
// over the top k logits), the clamped SwiGLU with expert biases.
void read_gpt_oss(const json& j, const std::string& file, ModelDesc& d) {
  FfnSpec f;
  f.kind = "moe";
  f.hidden_dim = get<int64_t>(j, "intermediate_size", file);
  f.router.kind = "topk_softmax";
  f.router.n_experts = get<int>(j, "num_local_experts", file);
  f.router.top_k = get<int>(j, "num_experts_per_tok", file);
  f.router.bias = true;
  f.activation = "swiglu_oai";
  f.swiglu_alpha = get_or<float>(j, "swiglu_alpha", 1.702f, file);
  f.swiglu_limit = get_or<float>(j, "swiglu_limit", 7.0f, file);
  f.expert_bias = true;
  const int window = get_or<int>(j, "sliding_window", 0, file);
  std::vector<std::string> types(size_t(d.n_layers()), "full_attention");
  if (j.contains("layer_types") && !j["layer_types"].is_null()) types = get<std::vector<std::string>>(j, "layer_types", file);
  if (int(types.size()) != d.n_layers())
    throw std::runtime_error(file + ": key layer_types: " + std::to_string(types.size()) + " entries for " +
                             std::to_string(d.n_layers()) + " layers");
  for (int i = 0; i < d.n_layers(); ++i) {
    LayerSpec& l = d.layers[size_t(i)];
    l.attn.qkv_bias = l.attn.o_bias = get_or<bool>(j, "attention_bias", true, file);
    l.attn.sinks = true;
    if (types[size_t(i)] == "sliding_attention") l.attn.sliding_window = window;
    else if (types[size_t(i)] != "full_attention")
      throw std::runtime_error(file + ": key layer_types[" + std::to_string(i) + "]: '" + types[size_t(i)] +
                               "' is not sliding_attention or full_attention");
    l.ffn = f;
  }
}

// DeepSeek-V3 / V3.1: MLA attention (interleaved RoPE on the rope part; YaRN's mscale_all_dim squared in the softmax
// scale), dense FFNs for the first first_k_dense_replace layers, then MoE: sigmoid scores with a correction bias,
// group-limited top-k, a shared expert.
void read_deepseek_v3(const json& j, const std::string& file, ModelDesc& d) {
  if (const std::string sf = get_or<std::string>(j, "scoring_func", "sigmoid", file); sf != "sigmoid")
    throw std::runtime_error(file + ": key scoring_func: '" + sf + "' is not implemented (sigmoid)");
  if (const std::string tm = get_or<std::string>(j, "topk_method", "noaux_tc", file); tm != "noaux_tc")
    throw std::runtime_error(file + ": key topk_method: '" + tm + "' is not implemented (noaux_tc)");
  no_attention_bias(j, file, "DeepSeek-V3");
  AttentionSpec a = d.layers[0].attn;
  a.kind = "mla";
  a.q_lora_rank = get_or<int64_t>(j, "q_lora_rank", 0, file);
  a.kv_lora_rank = get<int64_t>(j, "kv_lora_rank", file);
  a.qk_nope_head_dim = get<int64_t>(j, "qk_nope_head_dim", file);
  a.qk_rope_head_dim = get<int64_t>(j, "qk_rope_head_dim", file);
  a.v_head_dim = get<int64_t>(j, "v_head_dim", file);
  a.head_dim = a.qk_rope_head_dim;  // what RoPE rotates
  a.rope.interleaved = get_or<bool>(j, "rope_interleave", true, file);
  a.rope.rotary_dim = 0;
  float scale = 1.0f / std::sqrt(float(a.qk_nope_head_dim + a.qk_rope_head_dim));
  if (a.rope.type == "yarn" && a.rope.mscale_all_dim > 0 && a.rope.factor > 1) {
    const float m = 0.1f * a.rope.mscale_all_dim * std::log(a.rope.factor) + 1.0f;
    scale *= m * m;
  }
  a.softmax_scale = scale;
  FfnSpec moe;
  moe.kind = "moe";
  moe.hidden_dim = get<int64_t>(j, "moe_intermediate_size", file);
  moe.router.kind = "sigmoid_group";
  moe.router.n_experts = get<int>(j, "n_routed_experts", file);
  moe.router.top_k = get<int>(j, "num_experts_per_tok", file);
  moe.router.norm_topk_prob = get_or<bool>(j, "norm_topk_prob", true, file);
  moe.router.score_correction_bias = true;
  moe.router.n_group = get_or<int>(j, "n_group", 1, file);
  moe.router.topk_group = get_or<int>(j, "topk_group", 1, file);
  moe.router.routed_scaling_factor = get_or<float>(j, "routed_scaling_factor", 1.0f, file);
  moe.shared_hidden_dim = moe.hidden_dim * get_or<int64_t>(j, "n_shared_experts", 0, file);
  const int dense = get_or<int>(j, "first_k_dense_replace", 0, file);
  for (int i = 0; i < d.n_layers(); ++i) {
    LayerSpec& l = d.layers[size_t(i)];
    l.attn = a;
    if (i >= dense) l.ffn = moe;
  }
}

const ArchReader kArchitectures[] = {
    {"LlamaForCausalLM", "llama", "llama", &read_llama},
    {"MistralForCausalLM", "mistral", "llama", &read_llama},
    {"Qwen2ForCausalLM", "qwen2", "qwen2", &read_qwen2},
    {"Qwen3ForCausalLM", "qwen3", "qwen3", &read_qwen3},
    {"MixtralForCausalLM", "mixtral", "mixtral", &read_mixtral},
    {"Qwen3MoeForCausalLM", "qwen3_moe", "qwen3_moe", &read_qwen3_moe},
    {"GptOssForCausalLM", "gpt_oss", "gpt_oss", &read_gpt_oss},
    {"DeepseekV3ForCausalLM", "deepseek_v3", "deepseek_v3", &read_deepseek_v3},
};

}  // namespace

std::string hf_architectures_supported() {
  std::string s;
  for (const ArchReader& a : kArchitectures) s += (s.empty() ? "" : ", ") + std::string(a.hf_name);
  return s;
}

ModelDesc parse_hf_config(const json& j, const std::string& file) {
  if (!j.is_object()) throw std::runtime_error(file + ": expected a JSON object");
  ModelDesc d;
  std::string arch;
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty())
    arch = j["architectures"][0].is_string() ? j["architectures"][0].get<std::string>() : "";
  else
    arch = get_or<std::string>(j, "model_type", "", file);
  const ArchReader* reader = nullptr;
  for (const ArchReader& a : kArchitectures)
    if (arch == a.hf_name || arch == a.model_type) reader = &a;
  if (!reader)
    throw std::runtime_error(file + ": key architectures: unsupported architecture '" + arch +
                             "' (supported: " + hf_architectures_supported() + ")");
  d.arch = reader->family;
  if (get_or<bool>(j, "mlp_bias", false, file))
    throw std::runtime_error(file + ": key mlp_bias: FFN biases are not supported");
  if (const std::string act = get_or<std::string>(j, "hidden_act", "silu", file); act != "silu")
    throw std::runtime_error(file + ": key hidden_act: '" + act + "' is not supported (silu)");
  LayerSpec l;
  d.dim = get<int64_t>(j, "hidden_size", file);
  const int n_layers = get<int>(j, "num_hidden_layers", file);
  l.ffn.hidden_dim = get<int64_t>(j, "intermediate_size", file);
  l.attn.n_heads = get<int>(j, "num_attention_heads", file);
  l.attn.n_kv_heads = get_or<int>(j, "num_key_value_heads", l.attn.n_heads, file);
  l.attn.head_dim = get_or<int64_t>(j, "head_dim", l.attn.n_heads > 0 ? d.dim / l.attn.n_heads : 0, file);
  d.vocab = get<int64_t>(j, "vocab_size", file);
  d.norm_eps = get_or<float>(j, "rms_norm_eps", 1e-6f, file);
  d.max_seq_len = get_or<int>(j, "max_position_embeddings", 2048, file);
  d.tied_embeddings = get_or<bool>(j, "tie_word_embeddings", false, file);
  d.bos_id = token_id(j, "bos_token_id", 1, file);
  d.eos_id = token_id(j, "eos_token_id", 2, file);
  if (n_layers <= 0 || n_layers > (1 << 16))
    throw std::runtime_error(file + ": key num_hidden_layers: must be in [1, 65536], got " + std::to_string(n_layers));
  d.layers = uniform_layers(n_layers, l);
  const std::vector<RopeSpec> rope = read_rope(j, n_layers, l.attn.head_dim, file);
  for (int i = 0; i < n_layers; ++i) d.layers[size_t(i)].attn.rope = rope[size_t(i)];
  reader->read(j, file, d);  // after RoPE: a reader may derive from it (DeepSeek's softmax scale)
  if (j.contains("palu")) read_palu_section(j["palu"], file, d);  // a `hpcinfer palu compress` output
  validate_desc(d, file);
  return d;
}

json hf_config_json(const ModelDesc& d, const std::string& torch_dtype) {
  const LayerSpec& l = d.layers.at(0);
  const ArchReader* family = nullptr;
  for (const ArchReader& a : kArchitectures)
    if (d.arch == a.family) family = family ? family : &a;
  if (!family) throw std::invalid_argument("config.json: no architecture writes family '" + d.arch + "'");
  json j;
  j["architectures"] = {family->hf_name};
  j["model_type"] = family->model_type;
  j["hidden_size"] = d.dim;
  j["intermediate_size"] = l.ffn.hidden_dim;
  j["num_hidden_layers"] = d.n_layers();
  j["num_attention_heads"] = l.attn.n_heads;
  j["num_key_value_heads"] = l.attn.n_kv_heads;
  j["head_dim"] = l.attn.head_dim;
  j["vocab_size"] = d.vocab;
  j["rms_norm_eps"] = tidy(d.norm_eps);
  j["max_position_embeddings"] = d.max_seq_len;
  j["tie_word_embeddings"] = d.tied_embeddings;
  j["bos_token_id"] = d.bos_id;
  j["eos_token_id"] = d.eos_id;
  j["hidden_act"] = "silu";
  j["torch_dtype"] = torch_dtype;
  if (d.arch == "qwen3" || d.arch == "qwen3_moe") j["attention_bias"] = l.attn.qkv_bias;
  if (l.attn.sliding_window > 0) j["sliding_window"] = l.attn.sliding_window;
  // transformers 4's form, which every reader of config.json understands (hpcinfer reads both).
  j["rope_theta"] = tidy(l.attn.rope.theta);
  j["rope_scaling"] = rope_scaling_json(l.attn.rope);
  if (l.attn.rope.rotary_dim > 0) j["partial_rotary_factor"] = double(l.attn.rope.rotary_dim) / double(l.attn.head_dim);
  if (l.attn.rope.interleaved) j["rope_interleave"] = true;
  // The MoE families' own keys, from the first MoE layer (and which layers are dense).
  const LayerSpec* moe = nullptr;
  std::vector<int> dense;
  for (int i = 0; i < d.n_layers(); ++i) {
    const LayerSpec& x = d.layers[size_t(i)];
    if (x.ffn.kind == "moe") moe = moe ? moe : &x;
    else dense.push_back(i);
  }
  if (moe) {
    const FfnSpec& f = moe->ffn;
    j["num_experts_per_tok"] = f.router.top_k;
    if (d.arch == "mixtral" || d.arch == "gpt_oss") j["num_local_experts"] = f.router.n_experts;
    if (d.arch == "qwen3_moe") {
      j["num_experts"] = f.router.n_experts;
      j["moe_intermediate_size"] = f.hidden_dim;
      j["norm_topk_prob"] = f.router.norm_topk_prob;
      j["decoder_sparse_step"] = 1;
      j["mlp_only_layers"] = dense;
      if (!dense.empty()) j["intermediate_size"] = d.layers[size_t(dense[0])].ffn.hidden_dim;
    }
    if (d.arch == "gpt_oss") {
      j["attention_bias"] = l.attn.o_bias;
      j["swiglu_alpha"] = tidy(f.swiglu_alpha);
      j["swiglu_limit"] = tidy(f.swiglu_limit);
      json types = json::array();
      int window = 0;
      for (const LayerSpec& x : d.layers) {
        types.push_back(x.attn.sliding_window > 0 ? "sliding_attention" : "full_attention");
        window = std::max(window, x.attn.sliding_window);
      }
      j["layer_types"] = types;
      j["sliding_window"] = window;
    }
    if (d.arch == "deepseek_v3") {
      const AttentionSpec& a = l.attn;
      j["q_lora_rank"] = a.q_lora_rank > 0 ? json(a.q_lora_rank) : json(nullptr);
      j["kv_lora_rank"] = a.kv_lora_rank;
      j["qk_nope_head_dim"] = a.qk_nope_head_dim;
      j["qk_rope_head_dim"] = a.qk_rope_head_dim;
      j["v_head_dim"] = a.v_head_dim;
      j["n_routed_experts"] = f.router.n_experts;
      j["moe_intermediate_size"] = f.hidden_dim;
      j["n_shared_experts"] = f.shared_hidden_dim / f.hidden_dim;
      j["n_group"] = f.router.n_group;
      j["topk_group"] = f.router.topk_group;
      j["routed_scaling_factor"] = tidy(f.router.routed_scaling_factor);
      j["norm_topk_prob"] = f.router.norm_topk_prob;
      j["first_k_dense_replace"] = dense.size();
      j["scoring_func"] = "sigmoid";
      j["topk_method"] = "noaux_tc";
      j["rope_interleave"] = a.rope.interleaved;
      if (!dense.empty()) j["intermediate_size"] = d.layers[size_t(dense[0])].ffn.hidden_dim;
    }
  }
  // Read back, it must be the same description: what this writer cannot say (a per-layer mix the family's keys do
  // not express) is refused rather than written wrong.
  const ModelDesc back = parse_hf_config(j, "config.json");
  bool same = back.n_layers() == d.n_layers();
  for (int i = 0; same && i < d.n_layers(); ++i) {
    const LayerSpec &a = back.layers[size_t(i)], &b = d.layers[size_t(i)];
    same = a.attn.kind == b.attn.kind && a.ffn.kind == b.ffn.kind && a.ffn.hidden_dim == b.ffn.hidden_dim &&
           a.attn.n_heads == b.attn.n_heads && a.attn.sliding_window == b.attn.sliding_window &&
           a.ffn.router.n_experts == b.ffn.router.n_experts && a.ffn.shared_hidden_dim == b.ffn.shared_hidden_dim;
  }
  if (!same) throw std::invalid_argument("config.json: the " + d.arch + " description has layers its keys cannot express");
  return j;
}

}  // namespace hpcinfer
