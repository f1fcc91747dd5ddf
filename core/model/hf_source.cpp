#include "core/model/hf_source.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>

#include "core/formats/safetensors.hpp"
#include "core/model/base_source.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace hpcinfer {
namespace {

json read_json(const fs::path& p) {
  std::ifstream f(p);
  if (!f) throw std::runtime_error(p.string() + ": cannot open");
  try {
    return json::parse(f);
  } catch (const json::exception& e) {
    throw std::runtime_error(p.string() + ": not valid JSON: " + e.what());
  }
}

// Typed access with errors naming the file and key.
template <typename T>
T get(const json& j, const char* key, const std::string& file) {
  if (!j.contains(key) || j.at(key).is_null()) throw std::runtime_error(file + ": key " + key + " is missing");
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    throw std::runtime_error(file + ": key " + key + " has the wrong type (" + j.at(key).dump() + ")");
  }
}
template <typename T>
T get_or(const json& j, const char* key, T fallback, const std::string& file) {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  return get<T>(j, key, file);
}
int token_id(const json& j, const char* key, int fallback, const std::string& file) {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  const json& v = j.at(key);
  if (v.is_array()) {
    if (v.empty() || !v[0].is_number_integer()) throw std::runtime_error(file + ": key " + key + ": expected integers");
    return v[0].get<int>();
  }
  return get<int>(j, key, file);
}

class HfSource : public BaseSource {
 public:
  explicit HfSource(const std::string& dir);
  std::string format() const override { return "hf"; }
  std::string tokenizer_path() const override { return tokenizer_; }

 private:
  std::map<std::string, std::unique_ptr<SafetensorsFile>> files_;  // file name -> opened shard
  std::string tokenizer_;
};

HfSource::HfSource(const std::string& dir) {
  path_ = dir;
  const fs::path d(dir);
  const std::string cfg_file = (d / "config.json").string();
  if (!fs::exists(cfg_file)) throw std::runtime_error(dir + ": not a Hugging Face model directory (no config.json)");
  const json cfg = read_json(cfg_file);
  desc_ = parse_hf_config(cfg, cfg_file);

  // Which file holds which tensor.
  std::map<std::string, std::string> where;  // HF tensor name -> file name
  const fs::path index = d / "model.safetensors.index.json";
  if (fs::exists(index)) {
    const json idx = read_json(index);
    if (!idx.contains("weight_map") || !idx["weight_map"].is_object())
      throw std::runtime_error(index.string() + ": key weight_map is missing or not an object");
    for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) {
      if (!it.value().is_string())
        throw std::runtime_error(index.string() + ": weight_map entry " + it.key() + " is not a file name");
      where[it.key()] = it.value().get<std::string>();
    }
  } else if (!fs::exists(d / "model.safetensors")) {
    throw std::runtime_error(dir + ": neither model.safetensors nor model.safetensors.index.json found");
  }
  auto open_file = [&](const std::string& name) -> SafetensorsFile& {
    auto& f = files_[name];
    if (!f) f = std::make_unique<SafetensorsFile>((d / name).string());
    return *f;
  };
  if (where.empty()) {
    for (const auto& t : open_file("model.safetensors").tensors()) where[t.name] = "model.safetensors";
  }

  for (const auto& canonical : canonical_tensor_names(desc_)) {
    const std::string hf = hf_tensor_name(canonical);
    auto w = where.find(hf);
    if (w == where.end()) {
      const std::string holder = fs::exists(index) ? index.string() : (d / "model.safetensors").string();
      throw std::runtime_error(holder + ": tensor " + canonical + " (" + hf + "): missing");
    }
    SafetensorsFile& f = open_file(w->second);
    const SafetensorsTensorInfo* t = f.find(hf);
    if (!t) throw std::runtime_error(f.path() + ": tensor " + canonical + " (" + hf + "): missing (the index names this file)");
    add(canonical, f.view(*t), f.path(), hf);
  }

  // Tokenizer: hpcinfer's own note first, then the usual files.
  if (cfg.contains("hpcinfer_tokenizer") && cfg["hpcinfer_tokenizer"].is_string()) {
    fs::path t = cfg["hpcinfer_tokenizer"].get<std::string>();
    tokenizer_ = (t.is_absolute() ? t : d / t).string();
  } else {
    for (const std::string n : {std::string("tokenizer.json"), std::string("tokenizer.model"), std::string("tokenizer.bin"),
                                "tok" + std::to_string(desc_.vocab) + ".bin"})
      if (fs::exists(d / n)) {
        tokenizer_ = (d / n).string();
        break;
      }
  }
}

}  // namespace

ModelDesc parse_hf_config(const json& j, const std::string& file) {
  if (!j.is_object()) throw std::runtime_error(file + ": expected a JSON object");
  ModelDesc d;
  std::string arch;
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty())
    arch = j["architectures"][0].is_string() ? j["architectures"][0].get<std::string>() : "";
  else
    arch = get_or<std::string>(j, "model_type", "", file);
  if (arch == "LlamaForCausalLM" || arch == "MistralForCausalLM" || arch == "llama" || arch == "mistral") {
    d.arch = "llama";
    if (get_or<bool>(j, "attention_bias", false, file))
      throw std::runtime_error(file + ": key attention_bias: Llama attention biases (q/k/v/o) are not supported");
  } else if (arch == "Qwen2ForCausalLM" || arch == "qwen2") {
    d.arch = "qwen2";
    d.qkv_bias = true;
  } else {
    throw std::runtime_error(file + ": key architectures: unsupported architecture '" + arch +
                             "' (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)");
  }
  d.dim = get<int64_t>(j, "hidden_size", file);
  d.hidden_dim = get<int64_t>(j, "intermediate_size", file);
  d.n_layers = get<int>(j, "num_hidden_layers", file);
  d.n_heads = get<int>(j, "num_attention_heads", file);
  d.n_kv_heads = get_or<int>(j, "num_key_value_heads", d.n_heads, file);
  d.head_dim = get_or<int64_t>(j, "head_dim", d.n_heads > 0 ? d.dim / d.n_heads : 0, file);
  d.vocab = get<int64_t>(j, "vocab_size", file);
  d.norm_eps = get_or<float>(j, "rms_norm_eps", 1e-6f, file);
  d.rope_theta = get_or<float>(j, "rope_theta", 10000.0f, file);
  d.max_seq_len = get_or<int>(j, "max_position_embeddings", 2048, file);
  d.tied_embeddings = get_or<bool>(j, "tie_word_embeddings", false, file);
  d.bos_id = token_id(j, "bos_token_id", 1, file);
  d.eos_id = token_id(j, "eos_token_id", 2, file);
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const json& rs = j["rope_scaling"];
    const std::string rfile = file + ": rope_scaling";
    std::string type = get_or<std::string>(rs, "rope_type", get_or<std::string>(rs, "type", "", rfile), rfile);
    if (type != "llama3" && type != "default")
      throw std::runtime_error(file + ": key rope_scaling.rope_type: unsupported '" + type + "' (supported: llama3)");
  }
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null() && j["rope_scaling"].value("rope_type", "") != "default") {
    const json& rs = j["rope_scaling"];
    const std::string rfile = file + ": rope_scaling";
    d.rope_scaling.factor = get<float>(rs, "factor", rfile);
    d.rope_scaling.low_freq_factor = get_or<float>(rs, "low_freq_factor", 1.0f, rfile);
    d.rope_scaling.high_freq_factor = get_or<float>(rs, "high_freq_factor", 4.0f, rfile);
    d.rope_scaling.original_max_position = get_or<int>(rs, "original_max_position_embeddings", 8192, rfile);
  }
  validate_desc(d, file);
  return d;
}

namespace {
// 1e-5f prints as 9.999999747378752e-06 when widened; write the shortest decimal that reads back to the same float.
double tidy(float f) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.7g", double(f));
  return std::strtod(buf, nullptr);
}
}  // namespace

json hf_config_json(const ModelDesc& d, const std::string& torch_dtype) {
  json j;
  const bool qwen = d.arch == "qwen2";
  j["architectures"] = {qwen ? "Qwen2ForCausalLM" : "LlamaForCausalLM"};
  j["model_type"] = qwen ? "qwen2" : "llama";
  j["hidden_size"] = d.dim;
  j["intermediate_size"] = d.hidden_dim;
  j["num_hidden_layers"] = d.n_layers;
  j["num_attention_heads"] = d.n_heads;
  j["num_key_value_heads"] = d.n_kv_heads;
  j["head_dim"] = d.head_dim;
  j["vocab_size"] = d.vocab;
  j["rms_norm_eps"] = tidy(d.norm_eps);
  j["rope_theta"] = tidy(d.rope_theta);
  j["max_position_embeddings"] = d.max_seq_len;
  j["tie_word_embeddings"] = d.tied_embeddings;
  j["bos_token_id"] = d.bos_id;
  j["eos_token_id"] = d.eos_id;
  j["hidden_act"] = "silu";
  j["torch_dtype"] = torch_dtype;
  if (d.rope_scaling.factor > 0.0f)
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", tidy(d.rope_scaling.factor)},
                         {"low_freq_factor", tidy(d.rope_scaling.low_freq_factor)},
                         {"high_freq_factor", tidy(d.rope_scaling.high_freq_factor)},
                         {"original_max_position_embeddings", d.rope_scaling.original_max_position}};
  else
    j["rope_scaling"] = nullptr;
  return j;
}

std::string hf_tensor_name(const std::string& c) {
  if (c == "tok_embeddings") return "model.embed_tokens.weight";
  if (c == "norm") return "model.norm.weight";
  if (c == "output") return "lm_head.weight";
  if (c.rfind("layers.", 0) == 0) {
    const size_t dot = c.find('.', 7);
    const std::string pre = "model.layers." + c.substr(7, dot - 7) + ".", w = c.substr(dot + 1);
    static const std::map<std::string, std::string> kMap = {
        {"attn_norm", "input_layernorm.weight"}, {"ffn_norm", "post_attention_layernorm.weight"},
        {"wq", "self_attn.q_proj.weight"},       {"wk", "self_attn.k_proj.weight"},
        {"wv", "self_attn.v_proj.weight"},       {"wo", "self_attn.o_proj.weight"},
        {"bq", "self_attn.q_proj.bias"},         {"bk", "self_attn.k_proj.bias"},
        {"bv", "self_attn.v_proj.bias"},         {"w_gate", "mlp.gate_proj.weight"},
        {"w_up", "mlp.up_proj.weight"},          {"w_down", "mlp.down_proj.weight"}};
    auto it = kMap.find(w);
    if (it != kMap.end()) return pre + it->second;
  }
  throw std::invalid_argument("no Hugging Face name for canonical tensor " + c);
}

std::unique_ptr<ModelSource> open_hf_model(const std::string& dir) { return std::make_unique<HfSource>(dir); }

}  // namespace hpcinfer
