#include "core/model/hf_source.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>

#include "core/formats/safetensors.hpp"
#include "core/model/base_source.hpp"
#include "core/model/fused_experts.hpp"
#include "core/model/mla_tensors.hpp"
#include "core/model/model_layout.hpp"

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

  for (const LogicalTensor& lt : stored_tensors(desc_)) {
    const std::string& canonical = lt.name;
    FusedExpertPart part;
    if (desc_.arch == "gpt_oss" && fused_expert_part(canonical, part)) {  // cut out of the layer's fused tensor
      auto w = where.find(part.fused_name);
      if (w == where.end())
        throw std::runtime_error((fs::exists(index) ? index.string() : (d / "model.safetensors").string()) +
                                 ": tensor " + canonical + " (" + part.fused_name + "): missing");
      SafetensorsFile& f = open_file(w->second);
      const SafetensorsTensorInfo* t = f.find(part.fused_name);
      if (!t) throw std::runtime_error(f.path() + ": tensor " + part.fused_name + ": missing (the index names this file)");
      const int layer = std::stoi(canonical.substr(7));
      const FfnSpec& ffn = desc_.layers[size_t(layer)].ffn;
      std::vector<int64_t> want = fused_shape(part.part, ffn.router.n_experts, desc_.dim, ffn.hidden_dim);
      if (t->shape != want) {
        std::string got, exp;
        for (int64_t x : t->shape) got += (got.empty() ? "" : ", ") + std::to_string(x);
        for (int64_t x : want) exp += (exp.empty() ? "" : ", ") + std::to_string(x);
        throw std::runtime_error(f.path() + ": tensor " + part.fused_name + ": shape [" + got +
                                 "] does not fit the model description: expected [" + exp + "]");
      }
      const TensorView fused = f.view(*t);
      const int64_t dim = desc_.dim, ff = ffn.hidden_dim;
      add_derived(canonical, fused.dtype, f.path(), part.fused_name,
                  [fused, part, dim, ff](std::vector<uint8_t>& out) { cut_fused_expert(fused, part, dim, ff, out); });
      continue;
    }
    if (const std::string mla = mla_part(canonical); !mla.empty()) {  // cut out of kv_a_proj / kv_b_proj
      const int layer = std::stoi(canonical.substr(7));
      const std::string name = "model.layers." + std::to_string(layer) + ".self_attn." + mla_source(mla);
      auto w = where.find(name);
      if (w == where.end())
        throw std::runtime_error((fs::exists(index) ? index.string() : (d / "model.safetensors").string()) +
                                 ": tensor " + canonical + " (" + name + "): missing");
      SafetensorsFile& f = open_file(w->second);
      const SafetensorsTensorInfo* t = f.find(name);
      if (!t) throw std::runtime_error(f.path() + ": tensor " + name + ": missing (the index names this file)");
      const AttentionSpec a = desc_.layers[size_t(layer)].attn;
      const int64_t rows = mla == "wkv_a" || mla == "wk_pe" ? a.kv_lora_rank + a.qk_rope_head_dim
                                                              : a.n_heads * (a.qk_nope_head_dim + a.v_head_dim);
      const int64_t cols = mla == "wkv_a" || mla == "wk_pe" ? desc_.dim : a.kv_lora_rank;
      const TensorView src = f.view(*t);
      if (src.rows != rows || src.cols != cols)
        throw std::runtime_error(f.path() + ": tensor " + name + ": shape [" + std::to_string(src.rows) + ", " +
                                 std::to_string(src.cols) + "] does not fit the model description: expected [" +
                                 std::to_string(rows) + ", " + std::to_string(cols) + "]");
      add_derived(canonical, src.dtype, f.path(), name,
                  [src, mla, a](std::vector<uint8_t>& out) { cut_mla(src, mla, a, out); });
      continue;
    }
    const std::string hf = hf_tensor_name(canonical, desc_.arch);
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

std::string hf_tensor_name(const std::string& c, const std::string& family) {
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
        {"bv", "self_attn.v_proj.bias"},         {"bo", "self_attn.o_proj.bias"},
        {"q_norm", "self_attn.q_norm.weight"},   {"k_norm", "self_attn.k_norm.weight"},
        {"sinks", "self_attn.sinks"},            {"w_gate", "mlp.gate_proj.weight"},
        {"w_up", "mlp.up_proj.weight"},          {"w_down", "mlp.down_proj.weight"},
        {"router", "mlp.gate.weight"},           {"score_bias", "mlp.gate.e_score_correction_bias"},
        {"shared.w_gate", "mlp.shared_experts.gate_proj.weight"},
        {"shared.w_up", "mlp.shared_experts.up_proj.weight"},
        {"shared.w_down", "mlp.shared_experts.down_proj.weight"},
        {"wq_a", "self_attn.q_a_proj.weight"},   {"q_a_norm", "self_attn.q_a_layernorm.weight"},
        {"wq_b", "self_attn.q_b_proj.weight"},   {"kv_a_norm", "self_attn.kv_a_layernorm.weight"}};
    // Mixtral keeps its released names: block_sparse_moe.{gate, experts.N.w1 (gate) / w3 (up) / w2 (down)}.
    const bool mixtral = family == "mixtral";
    if (mixtral && w == "router") return pre + "block_sparse_moe.gate.weight";
    if (family == "gpt_oss" && w == "router") return pre + "mlp.router.weight";
    if (family == "gpt_oss" && w == "router_bias") return pre + "mlp.router.bias";
    if (w.rfind("experts.", 0) == 0) {
      const size_t at = w.find('.', 8);
      const std::string e = w.substr(8, at - 8), what = w.substr(at + 1);
      static const std::map<std::string, std::pair<const char*, const char*>> kExpert = {
          {"w_gate", {"w1", "gate_proj"}}, {"w_up", {"w3", "up_proj"}}, {"w_down", {"w2", "down_proj"}}};
      auto it = kExpert.find(what);
      if (it != kExpert.end())
        return pre + (mixtral ? "block_sparse_moe.experts." + e + "." + it->second.first
                              : "mlp.experts." + e + "." + it->second.second) + ".weight";
    }
    auto it = kMap.find(w);
    if (it != kMap.end()) return pre + it->second;
  }
  throw std::invalid_argument("no Hugging Face name for canonical tensor " + c);
}

std::unique_ptr<ModelSource> open_hf_model(const std::string& dir) { return std::make_unique<HfSource>(dir); }

}  // namespace hpcinfer
