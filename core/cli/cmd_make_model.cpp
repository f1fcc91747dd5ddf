// hpcinfer make-model: writes a Hugging Face model directory (config.json + safetensors) either with deterministic
// random weights of a named real shape (--preset), or converted from a llama2.c .bin / GGUF file (--from).
// Weights are streamed to disk a few rows at a time; the whole model is never held in memory.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

#include "core/cli/commands.hpp"
#include "core/formats/dequantize.hpp"
#include "core/formats/safetensors_writer.hpp"
#include "core/model/base_source.hpp"
#include "core/model/hf_source.hpp"
#include "core/model/model_layout.hpp"
#include "core/model/model_source.hpp"
#include "core/model/presets.hpp"

namespace fs = std::filesystem;

namespace hpcinfer::cli {
namespace {

const char* torch_dtype(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::f16: return "float16";
    default: return "bfloat16";
  }
}

DType parse_dtype(const std::string& s) {
  if (s == "bf16") return DType::bf16;
  if (s == "f16") return DType::f16;
  if (s == "f32") return DType::f32;
  throw std::invalid_argument("--dtype " + s + ": expected bf16, f16 or f32");
}

// One spec per canonical tensor, in HF names; vectors are 1-D as in Hugging Face checkpoints.
struct Plan {
  std::vector<TensorSpec> specs;
  std::map<std::string, std::string> canonical;  // HF name -> canonical name
};
Plan plan_tensors(const ModelDesc& d, const std::function<DType(const std::string&)>& dtype_of) {
  Plan p;
  for (const LogicalTensor& t : stored_tensors(d)) {
    const std::string& c = t.name;
    TensorSpec s;
    s.name = hf_tensor_name(c, d.arch);
    s.dtype = dtype_of(c);
    s.shape = t.is_vector() ? std::vector<int64_t>{t.cols} : std::vector<int64_t>{t.rows, t.cols};
    p.canonical[s.name] = c;
    p.specs.push_back(std::move(s));
  }
  return p;
}

void write_config(const fs::path& dir, const nlohmann::json& cfg) {
  std::ofstream f(dir / "config.json");
  f << cfg.dump(2) << "\n";
  if (!f) throw std::runtime_error((dir / "config.json").string() + ": write failed");
}

void check_space(const fs::path& dir, uint64_t bytes) {
  std::error_code ec;
  auto sp = fs::space(dir, ec);
  if (!ec && sp.available < bytes + (64ull << 20))
    throw std::runtime_error(dir.string() + ": not enough disk space: the weights need " + std::to_string(bytes >> 20) +
                             " MiB, " + std::to_string(sp.available >> 20) + " MiB available");
}

std::string human_count(int64_t n) {
  char buf[32];
  if (n >= 1000000000) std::snprintf(buf, sizeof(buf), "%.2fB", double(n) / 1e9);
  else if (n >= 1000000) std::snprintf(buf, sizeof(buf), "%.2fM", double(n) / 1e6);
  else std::snprintf(buf, sizeof(buf), "%.1fK", double(n) / 1e3);
  return buf;
}

uint64_t total_bytes(const Plan& p) {
  uint64_t t = 0;
  for (const auto& s : p.specs) t += s.bytes();
  return t;
}

}  // namespace

int cmd_make_model(const Args& args) {
  CLI::App app{"Write a Hugging Face model directory (config.json + safetensors): random weights of a real shape "
               "(--preset), or a llama2.c .bin / GGUF model converted (--from)."};
  app.name("hpcinfer make-model");
  std::string preset, out, dtype_s, from;
  uint64_t seed = 0;
  bool config_only = false, weights = false, force = false, list = false;
  double shard_mb = 4096;
  app.add_option("--preset", preset, "model shape (see --list)");
  app.add_option("--from", from, "convert this llama2.c .bin or .gguf model instead (q/k come out rotate-half)");
  app.add_option("--out", out, "output directory");
  app.add_option("--dtype", dtype_s, "bf16 | f16 | f32 (default: bf16 for presets; for --from the source's float "
                                     "type per tensor, f32 for quantized GGUF tensors)");
  app.add_option("--seed", seed, "random seed (the same seed writes the same weights)");
  app.add_flag("--config-only", config_only, "write config.json only");
  int layers = 0;
  app.add_option("--layers", layers, "presets: keep only the first N layers (the same per-layer shape, a smaller "
                                     "model for per-layer speed and memory)")->check(CLI::PositiveNumber);
  app.add_flag("--weights", weights, "write weights even for presets that are config-only by default (llama-3-70b)");
  app.add_flag("--force", force, "overwrite an existing model in --out");
  app.add_option("--shard-mb", shard_mb, "start a new safetensors shard past this size (default 4096)");
  app.add_flag("--list", list, "list the presets and exit");
  try {
    std::vector<std::string> rev(args.rbegin(), args.rend());
    app.parse(rev);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (list) {
    for (const auto& p : model_presets())
      std::printf("%-15s %8s params%s  (%s)\n", p.name.c_str(), human_count(param_count(p.desc)).c_str(),
                  p.config_only ? ", config only unless --weights" : "", p.source.c_str());
    return 0;
  }
  auto usage = [&](const std::string& msg) {
    std::fprintf(stderr, "hpcinfer make-model: %s (see --help)\n", msg.c_str());
    return 2;
  };
  if (preset.empty() == from.empty()) return usage("give exactly one of --preset NAME or --from FILE");
  if (out.empty()) return usage("--out DIR is required");
  if (shard_mb <= 0) return usage("--shard-mb must be positive");
  std::optional<DType> dtype;
  try {
    if (!dtype_s.empty()) dtype = parse_dtype(dtype_s);
  } catch (const std::exception& e) {
    return usage(e.what());
  }
  const ModelPreset* found = nullptr;
  if (!preset.empty() && !(found = find_preset(preset))) {
    std::string names;
    for (const auto& p : model_presets()) names += " " + p.name;
    return usage("unknown preset '" + preset + "' (presets:" + names + ")");
  }
  if (layers > 0 && !found) return usage("--layers goes with --preset");
  std::optional<ModelPreset> cut;  // the preset with fewer layers
  if (found && layers > 0) {
    if (layers > found->desc.n_layers())
      return usage("--layers " + std::to_string(layers) + ": " + found->name + " has " +
                   std::to_string(found->desc.n_layers()) + " layers");
    cut = *found;
    cut->desc.layers.resize(size_t(layers));
  }
  const ModelPreset* pre = cut ? &*cut : found;
  const fs::path dir(out);
  if (fs::exists(dir / "config.json") && !force)
    return usage(dir.string() + " already holds a model (config.json); pass --force to overwrite");
  fs::create_directories(dir);
  std::vector<fs::path> stale;  // shards of an earlier model (--force) would confuse loaders
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors" || e.path().filename() == "model.safetensors.index.json")
      stale.push_back(e.path());
  if (!stale.empty() && !force)
    return usage(dir.string() + " already holds " + stale.front().filename().string() + "; pass --force to overwrite");
  for (const auto& p : stale) fs::remove(p);
  const uint64_t max_shard = uint64_t(shard_mb * 1048576.0);

  if (pre) {
    const DType dt = dtype.value_or(DType::bf16);
    nlohmann::json cfg = hf_config_json(pre->desc, torch_dtype(dt));
    cfg["hpcinfer_preset"] = pre->name;
    if (cut) cfg["hpcinfer_preset_layers"] = layers;
    cfg["hpcinfer_seed"] = seed;
    const bool skip = config_only || (pre->config_only && !weights);
    write_config(dir, cfg);
    if (skip) {
      std::printf("%s: wrote config.json only for %s (%.1f GiB of %s weights%s)\n", dir.string().c_str(),
                  pre->name.c_str(), double(param_count(pre->desc)) * double(dtype_row_bytes(dt, 1)) / double(1ull << 30),
                  dtype_name(dt), config_only ? "" : "; config only by default: pass --weights to write them");
      return 0;
    }
    if (pre->desc.arch == "gpt_oss" || pre->desc.arch == "deepseek_v3")
      return usage(pre->name + ": make-model writes " + pre->desc.arch + " as config.json only (its checkpoints fuse "
                   "experts / MLA tensors that the writer does not produce); use --config-only");
    const Plan plan = plan_tensors(pre->desc, [&](const std::string&) { return dt; });
    check_space(dir, total_bytes(plan));
    auto files = write_safetensors_model(dir.string(), plan.specs,
        [&](const TensorSpec& s, int64_t r0, int64_t r1, float* o) {
          random_weight_rows(seed, plan.canonical.at(s.name), r0, r1, s.cols(), o);
        }, max_shard);
    std::printf("%s: %s, %s params, %s, seed %llu: %.3f GiB in %zu file(s)\n", dir.string().c_str(),
                pre->name.c_str(), human_count(param_count(pre->desc)).c_str(), dtype_name(dt), (unsigned long long)seed,
                double(total_bytes(plan)) / double(1ull << 30), files.size());
    return 0;
  }

  // --from: through the ModelSource, so q/k rows are already rotate-half.
  auto src = open_model(from);
  const ModelDesc& d = src->desc();
  auto dtype_of = [&](const std::string& c) {
    if (dtype) return *dtype;
    const DType t = src->tensor(c).dtype;
    return (t == DType::f32 || t == DType::f16 || t == DType::bf16) ? t : DType::f32;
  };
  const Plan plan = plan_tensors(d, dtype_of);
  nlohmann::json cfg = hf_config_json(d, torch_dtype(dtype_of(layer_tensor(0, "wq"))));
  cfg["hpcinfer_source"] = fs::absolute(from).string();
  const std::string tok = src->tokenizer_path();
  if (!tok.empty() && src->format() == "gguf") {
    cfg["hpcinfer_tokenizer"] = fs::absolute(tok).string();  // the vocabulary lives in the GGUF file itself
  } else if (!tok.empty()) {
    const fs::path name = fs::path(tok).filename();
    fs::copy_file(tok, dir / name, fs::copy_options::overwrite_existing);
    cfg["hpcinfer_tokenizer"] = name.string();
  }
  if (!config_only) {
    check_space(dir, total_bytes(plan));
    write_safetensors_model(dir.string(), plan.specs,
        [&](const TensorSpec& s, int64_t r0, int64_t r1, float* o) {
          const TensorView v = src->tensor(plan.canonical.at(s.name));
          for (int64_t r = r0; r < r1; ++r) formats::dequantize_row(v.dtype, v.row_ptr(r), v.cols, o + (r - r0) * v.cols);
        }, max_shard);
  }
  write_config(dir, cfg);
  std::printf("%s: converted %s (%s, %s params)%s; tokenizer: %s\n", dir.string().c_str(), from.c_str(),
              src->format().c_str(), human_count(param_count(d)).c_str(), config_only ? " config only" : "",
              tok.empty() ? "none found" : tok.c_str());
  return 0;
}

}  // namespace hpcinfer::cli
