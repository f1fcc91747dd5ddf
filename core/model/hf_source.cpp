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
#include "core/formats/microscaling.hpp"
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

// quantization_config.weight_block_size of FP8 checkpoints (DeepSeek: [128, 128]); square blocks only.
int64_t fp8_block_size(const json& cfg, const std::string& file) {
  if (!cfg.contains("quantization_config") || !cfg["quantization_config"].is_object()) return 128;
  const json& q = cfg["quantization_config"];
  if (q.contains("quant_method") && q["quant_method"].is_string() && q["quant_method"] != "fp8" &&
      q["quant_method"] != "mxfp4")
    throw std::runtime_error(file + ": key quantization_config.quant_method: '" + q["quant_method"].get<std::string>() +
                             "' is not read (fp8, mxfp4)");
  if (!q.contains("weight_block_size")) return 128;
  const json& b = q["weight_block_size"];
  if (!b.is_array() || b.size() != 2 || !b[0].is_number_integer() || b[0] != b[1] || b[0].get<int64_t>() <= 0)
    throw std::runtime_error(file + ": key quantization_config.weight_block_size: expected [n, n], got " + b.dump());
  return b[0].get<int64_t>();
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
      const std::string file = it.value().get<std::string>();
      // A shard is a file of this directory: no path outside it (../, /abs) is followed.
      if (file.empty() || file == "." || file == ".." || file.find('/') != std::string::npos ||
          file.find('\\') != std::string::npos)
        throw std::runtime_error(index.string() + ": weight_map entry " + it.key() + ": '" + file +
                                 "' is not a file name in the model directory");
      where[it.key()] = file;
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

  const std::string holder = fs::exists(index) ? index.string() : (d / "model.safetensors").string();
  // A checkpoint with more layers than config.json says would run only the first ones, silently: refused.
  // (DeepSeek's multi-token-prediction layers follow the last one: num_nextn_predict_layers of them are allowed.)
  const int64_t extra = cfg.contains("num_nextn_predict_layers") && cfg["num_nextn_predict_layers"].is_number_integer()
                            ? cfg["num_nextn_predict_layers"].get<int64_t>() : 0;
  for (const auto& [name, file] : where) {
    if (name.rfind("model.layers.", 0) != 0) continue;
    const int64_t layer = std::atoll(name.c_str() + 13);
    if (layer >= desc_.n_layers() + extra)
      throw std::runtime_error(cfg_file + ": key num_hidden_layers: " + std::to_string(desc_.n_layers()) +
                               ", but the checkpoint holds layer " + std::to_string(layer) + " (" + name + " in " +
                               file + "): a truncated config would run part of the model");
  }
  // A checkpoint tensor by its file name: the file and its header entry, or {nullptr, nullptr}.
  struct Located {
    SafetensorsFile* file = nullptr;
    const SafetensorsTensorInfo* info = nullptr;
  };
  auto try_locate = [&](const std::string& hf) -> Located {
    auto w = where.find(hf);
    if (w == where.end()) return {};
    SafetensorsFile& f = open_file(w->second);
    const SafetensorsTensorInfo* t = f.find(hf);
    if (!t) throw std::runtime_error(f.path() + ": tensor " + hf + ": missing (the index names this file)");
    return {&f, t};
  };
  auto locate = [&](const std::string& hf, const std::string& canonical) -> Located {
    const Located l = try_locate(hf);
    if (!l.info) throw std::runtime_error(holder + ": tensor " + canonical + " (" + hf + "): missing");
    return l;
  };
  auto dims = [](const std::vector<int64_t>& v) {
    std::string s;
    for (int64_t x : v) s += (s.empty() ? "" : ", ") + std::to_string(x);
    return "[" + s + "]";
  };
  // FP8 weights (DeepSeek's releases): the view decoded to f32 with `<name>_scale_inv`'s block scales.
  const int64_t fp8_block = fp8_block_size(cfg, cfg_file);
  auto fp8_decoder = [&](const Located& l) {
    const std::string scale_name = l.info->name + "_scale_inv";
    const Located s = locate(scale_name, l.info->name);
    const TensorView w = l.file->view(*l.info), sc = s.file->view(*s.info);
    const std::vector<int64_t> want{(w.rows + fp8_block - 1) / fp8_block, (w.cols + fp8_block - 1) / fp8_block};
    if (s.info->dtype != DType::f32 || s.info->shape != want)
      throw std::runtime_error(s.file->path() + ": tensor " + scale_name + ": expected F32 " + dims(want) + " (block " +
                               std::to_string(fp8_block) + " of " + dims(l.info->shape) + "), got " +
                               s.info->dtype_name + " " + dims(s.info->shape));
    return [w, sc, block = fp8_block](std::vector<uint8_t>& out) {
      out.resize(size_t(w.rows * w.cols) * sizeof(float));
      float* o = reinterpret_cast<float*>(out.data());
      for (int64_t r = 0; r < w.rows; ++r)
        formats::dequantize_fp8_row(static_cast<const uint8_t*>(w.row_ptr(r)), r, w.cols,
                                    static_cast<const float*>(sc.data), sc.cols, block, o + r * w.cols);
    };
  };

  for (const LogicalTensor& lt : stored_tensors(desc_)) {
    const std::string& canonical = lt.name;
    const int layer = canonical.rfind("layers.", 0) == 0 ? std::stoi(canonical.substr(7)) : -1;
    FusedExpertPart part;
    if (desc_.arch == "gpt_oss" && fused_expert_part(canonical, part)) {  // cut out of the layer's fused tensors
      const FfnSpec& ffn = desc_.layers[size_t(layer)].ffn;
      const int64_t dim = desc_.dim, ff = ffn.hidden_dim, E = ffn.router.n_experts;
      const Located blocks = try_locate(part.fused_name + "_blocks");
      if (!try_locate(part.fused_name).info && blocks.info) {  // the released MXFP4 experts
        const Located scales = locate(part.fused_name + "_scales", canonical);
        std::vector<int64_t> want_s = mxfp4_scales_shape(part.part, E, dim, ff), want_b = want_s;
        want_b.push_back(16);
        for (const auto& [l, want] : {std::pair{blocks, want_b}, std::pair{scales, want_s}})
          if (l.info->dtype_name != "U8" || l.info->shape != want)
            throw std::runtime_error(l.file->path() + ": tensor " + l.info->name + ": expected U8 " + dims(want) +
                                     ", got " + l.info->dtype_name + " " + dims(l.info->shape));
        const TensorView vb = blocks.file->view(*blocks.info), vs = scales.file->view(*scales.info);
        add_derived(canonical, DType::f32, blocks.file->path(), blocks.info->name,
                    [vb, vs, part, dim, ff](std::vector<uint8_t>& out) { cut_fused_expert_mxfp4(vb, vs, part, dim, ff, out); });
        continue;
      }
      const Located f = locate(part.fused_name, canonical);
      if (f.info->shape != fused_shape(part.part, E, dim, ff))
        throw std::runtime_error(f.file->path() + ": tensor " + part.fused_name + ": shape " + dims(f.info->shape) +
                                 " does not fit the model description: expected " + dims(fused_shape(part.part, E, dim, ff)));
      const TensorView fused = f.file->view(*f.info);
      add_derived(canonical, fused.dtype, f.file->path(), part.fused_name,
                  [fused, part, dim, ff](std::vector<uint8_t>& out) { cut_fused_expert(fused, part, dim, ff, out); });
      continue;
    }
    if (const std::string mla = mla_part(canonical); !mla.empty()) {  // cut out of kv_a_proj / kv_b_proj
      const std::string name = "model.layers." + std::to_string(layer) + ".self_attn." + mla_source(mla);
      const Located f = locate(name, canonical);
      const AttentionSpec a = desc_.layers[size_t(layer)].attn;
      const bool kv_a = mla == "wkv_a" || mla == "wk_pe";
      const std::vector<int64_t> want{kv_a ? a.kv_lora_rank + a.qk_rope_head_dim : a.n_heads * (a.qk_nope_head_dim + a.v_head_dim),
                                      kv_a ? desc_.dim : a.kv_lora_rank};
      if (f.info->shape != want)
        throw std::runtime_error(f.file->path() + ": tensor " + name + ": shape " + dims(f.info->shape) +
                                 " does not fit the model description: expected " + dims(want));
      const TensorView src = f.file->view(*f.info);
      if (src.dtype == DType::f8_e4m3) {  // decode the whole source, then cut
        auto decode = fp8_decoder(f);
        add_derived(canonical, DType::f32, f.file->path(), name, [decode, src, mla, a](std::vector<uint8_t>& out) {
          std::vector<uint8_t> full;
          decode(full);
          TensorView f32 = src;
          f32.dtype = DType::f32;
          f32.data = full.data();
          cut_mla(f32, mla, a, out);
        });
      } else {
        add_derived(canonical, src.dtype, f.file->path(), name, [src, mla, a](std::vector<uint8_t>& out) { cut_mla(src, mla, a, out); });
      }
      continue;
    }
    const std::string hf = hf_tensor_name(canonical, desc_.arch);
    const Located f = locate(hf, canonical);
    if (f.info->dtype == DType::f8_e4m3 && f.info->supported) {
      auto [rows, cols] = tensor_shape(desc_, canonical);
      if (f.info->rows() != rows || f.info->cols() != cols)
        throw std::runtime_error(f.file->path() + ": tensor " + canonical + " (" + hf + "): shape " + dims(f.info->shape) +
                                 " does not fit the model description: expected [" + std::to_string(rows) + ", " +
                                 std::to_string(cols) + "]");
      add_derived(canonical, DType::f32, f.file->path(), hf, fp8_decoder(f));
      continue;
    }
    add(canonical, f.file->view(*f.info), f.file->path(), hf);
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
        {"wq_b", "self_attn.q_b_proj.weight"},   {"kv_a_norm", "self_attn.kv_a_layernorm.weight"},
        {"wk_down", "self_attn.k_down_proj.weight"}, {"wk_up", "self_attn.k_up_proj.weight"},  // palu
        {"wv_down", "self_attn.v_down_proj.weight"}, {"wo_latent", "self_attn.o_latent_proj.weight"}};
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
