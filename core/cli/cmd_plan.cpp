// hpcinfer plan --show CONFIG [--set k=v]... [--context N] [--device-memory GB] [--json]: every rank's plan, without loading weights.
// Per rank: layers, weight shards with their bytes (the configured weight format's own count; a tied head that shares
// the embedding's copy counts once), the KV cache for batching.batch_size sequences of --context tokens, the
// communicator groups and the communication steps of one forward pass (core/model/cost_model.hpp: the one model).
// Memory planner: per rank also activations (the stage's buffers for one forward pass over all batch_size x context
// tokens, an upper bound: prompt in one pass) and workspace (per-thread attention scores, the head's logits), their
// total, and with --device-memory GB (10^9 bytes) a FITS / DOES NOT FIT line per rank (exit 0 either way).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <fstream>
#include <thread>
#include <nlohmann/json.hpp>

#include "core/cli/cli_util.hpp"
#include "core/config/config_error.hpp"
#include "core/config/load_config.hpp"
#include "core/model/cost_model.hpp"
#include "core/model/hf_source.hpp"
#include "core/runtime/rank_session.hpp"

namespace hpcinfer::cli {
namespace {

std::string mib(double b) {
  char s[32];
  std::snprintf(s, sizeof s, "%.2f MiB", b / (1024.0 * 1024.0));
  return s;
}

// A Hugging Face directory with config.json only (`make-model --config-only`): the shapes, no tensors. Enough for
// planning: the strategies and the byte counts read only the description.
class ConfigOnlySource : public ModelSource {
 public:
  ConfigOnlySource(const std::string& dir, ModelDesc d) : dir_(dir), d_(std::move(d)) {}
  const ModelDesc& desc() const override { return d_; }
  std::string path() const override { return dir_; }
  std::string format() const override { return "hf"; }
  bool has_tensor(const std::string&) const override { return false; }
  TensorView tensor(const std::string& name) const override {
    throw std::runtime_error(dir_ + ": config only, no tensor " + name);
  }
  std::vector<std::string> tensor_names() const override { return {}; }
  std::string tokenizer_path() const override { return ""; }

 private:
  std::string dir_;
  ModelDesc d_;
};

bool config_only_dir(const std::string& p) {
  namespace fs = std::filesystem;
  return fs::is_directory(p) && fs::exists(fs::path(p) / "config.json") && !fs::exists(fs::path(p) / "model.safetensors") &&
         !fs::exists(fs::path(p) / "model.safetensors.index.json");
}

std::string gb(double b) {
  char s[32];
  std::snprintf(s, sizeof s, "%.2f GB", b / 1e9);
  return s;
}

}  // namespace

int cmd_plan(const Args& args) {
  CLI::App app{"Print each rank's plan (layers, weight shards, bytes, communication) without loading weights",
               "hpcinfer plan"};
  std::string config;
  std::vector<std::string> sets;
  int context = 0;
  bool json = false, show = false;
  double device_gb = 0;
  app.add_flag("--show", show, "print the plan (the default and only action)");
  app.add_option("config", config, "experiment YAML")->required();
  app.add_option("--set", sets, "override a key: key.path=value (repeatable)");
  app.add_option("--context", context, "KV-cache length per sequence (default: the model's max_seq_len)");
  app.add_option("--device-memory", device_gb, "memory of each rank's device in GB (10^9 bytes): say if the plan fits")
      ->check(CLI::PositiveNumber);
  app.add_flag("--json", json, "one JSON document instead of text");
  if (auto rc = parse_args(app, args)) return *rc;
  ExperimentConfig cfg;
  try {
    cfg = load_config(config, sets);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  const int world = cfg.world.tp * cfg.world.pp;
  // Config-only directories: plan from the shapes; "auto" weights follow the config's torch_dtype.
  const bool config_only = config_only_dir(cfg.model.path);
  nlohmann::json hf_config;
  if (config_only) {
    std::ifstream f(std::filesystem::path(cfg.model.path) / "config.json");
    hf_config = nlohmann::json::parse(f, nullptr, false);
    std::fprintf(stderr, "hpcinfer plan: note: %s has config.json only; planning from its shapes\n", cfg.model.path.c_str());
  }
  nlohmann::json out = nlohmann::json::array();
  std::unique_ptr<RankSession> first;
  for (int r = 0; r < world; ++r) {
    LaunchEnv env;
    env.rank = r;
    env.size = world;
    std::unique_ptr<RankSession> s;
    try {
      if (config_only) {
        const std::string cfg_file = (std::filesystem::path(cfg.model.path) / "config.json").string();
        ExperimentConfig c = cfg;
        const std::string dtype = hf_config.is_object() ? hf_config.value("torch_dtype", hf_config.value("dtype", std::string())) : "";
        if (c.plugins.weights == "auto") c.plugins.weights = dtype == "bfloat16" ? "bf16" : "f32";
        s = describe_rank(c, env, std::make_unique<ConfigOnlySource>(cfg.model.path, parse_hf_config(hf_config, cfg_file)));
      } else {
        s = describe_rank(cfg, env);
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "hpcinfer plan: error: %s\n", e.what());
      return 2;
    }
    const ModelDesc& m = s->model->desc();
    const int ctx = context > 0 ? context : m.max_seq_len;
    const RankPlan& p = s->plan;
    const int threads = cfg.threads > 0 ? cfg.threads : int(std::max(1u, std::thread::hardware_concurrency()));
    const RankCost cost = rank_cost(m, p, s->weights.get());
    // Activations for one pass over batch_size x ctx tokens (an upper bound: a whole prompt in one pass).
    const MemoryPlan mem = memory_plan(m, p, cost, cfg.batching.batch_size, ctx,
                                       double(cfg.batching.batch_size) * ctx, threads);
    const double device_bytes = device_gb * 1e9;
    const bool fits = mem.total() <= device_bytes;
    nlohmann::json shards = nlohmann::json::array();
    for (const ShardCost& c : cost.shards) {
      const WeightShard& w = c.shard;
      shards.push_back({{"tensor", w.tensor}, {"rows", {w.rows.begin, w.rows.end}}, {"cols", {w.cols.begin, w.cols.end}},
                        {"bytes", c.shared ? 0.0 : c.bytes}});
      if (c.shared) shards.back()["shares"] = "tok_embeddings";
    }
    nlohmann::json steps = nlohmann::json::array();
    for (const CommStep& c : p.steps) {
      steps.push_back({{"kind", comm_step_name(c.kind)}, {"anchor", c.anchor}, {"peers", c.peers}});
      if (!c.group.empty()) steps.back()["group"] = c.group;
      if (!c.sizes.empty()) steps.back()["sizes"] = c.sizes;
    }
    // Experts this rank holds, per MoE layer (from its shards: layers.<i>.experts.<e>.w_gate).
    std::map<int, std::vector<int>> experts;
    for (const WeightShard& w : p.shards)
      if (const size_t at = w.tensor.find(".experts."); at != std::string::npos && w.tensor.ends_with(".w_gate"))
        experts[std::stoi(w.tensor.substr(7))].push_back(std::stoi(w.tensor.substr(at + 9)));
    nlohmann::json experts_json = nlohmann::json::object();
    for (const auto& [layer, ids] : experts) experts_json[std::to_string(layer)] = ids;
    nlohmann::json groups = nlohmann::json::array();
    for (const CommGroup& g : p.groups) groups.push_back({{"name", g.name}, {"ranks", g.ranks}});
    out.push_back({{"rank", r}, {"tp_rank", p.world.tp_rank()}, {"pp_rank", p.world.pp_rank()},
                   {"layers", {p.layer_begin, p.layer_end}}, {"embedding", p.has_embedding}, {"head", p.has_head},
                   {"weights_plugin", s->weights_plugin}, {"device", cfg.device},
                   {"weight_bytes", mem.weights}, {"kv_cache_bytes", mem.kv_cache}, {"kv_context", ctx},
                   {"kv_bytes_per_token", cost.kv_bytes_per_token},
                   {"activation_bytes", mem.activations}, {"workspace_bytes", mem.workspace},
                   {"total_bytes", mem.total()}, {"experts", experts_json}, {"shards", shards}, {"groups", groups},
                   {"steps", steps}});
    if (device_gb > 0) {
      out.back()["device_memory_bytes"] = device_bytes;
      out.back()["fits"] = fits;
      out.back()["memory_verdict"] = fits ? "FITS" : "DOES NOT FIT";
    }
    if (!json) {
      std::printf("rank %d (tp %d, pp %d): layers [%d, %d)%s%s\n", r, p.world.tp_rank(), p.world.pp_rank(),
                  p.layer_begin, p.layer_end, p.has_embedding ? " +embedding" : "", p.has_head ? " +head" : "");
      std::printf("  weights (%s on %s): %s in %zu shards; KV cache: %s (%d sequences x %d tokens, %.0f bytes per "
                  "token)\n",
                  s->weights_plugin.c_str(), cfg.device.c_str(), mib(mem.weights).c_str(), p.shards.size(),
                  mib(mem.kv_cache).c_str(), cfg.batching.batch_size, ctx, cost.kv_bytes_per_token);
      std::printf("  memory: weights %s + KV cache %s + activations %s + workspace %s = %s\n", gb(mem.weights).c_str(),
                  gb(mem.kv_cache).c_str(), gb(mem.activations).c_str(), gb(mem.workspace).c_str(),
                  gb(mem.total()).c_str());
      if (device_gb > 0)
        std::printf("  rank %d: %s in %s of device memory (%s needed, %s %s)\n", r, fits ? "FITS" : "DOES NOT FIT",
                    gb(device_bytes).c_str(), gb(mem.total()).c_str(), gb(std::abs(device_bytes - mem.total())).c_str(),
                    fits ? "to spare" : "short");
      if (!experts.empty()) {
        std::string line;
        for (const auto& [layer, ids] : experts) {
          std::string list;
          for (int e : ids) list += (list.empty() ? "" : ",") + std::to_string(e);
          line += (line.empty() ? "" : "; ") + std::to_string(layer) + ": " + list;
        }
        std::printf("  experts by layer: %s\n", line.c_str());
      }
      for (const ShardCost& c : cost.shards) {
        const WeightShard& w = c.shard;
        std::printf("    %-24s rows [%lld, %lld) cols [%lld, %lld)  %s%s\n", w.tensor.c_str(), (long long)w.rows.begin,
                    (long long)w.rows.end, (long long)w.cols.begin, (long long)w.cols.end,
                    c.shared ? "" : mib(c.bytes).c_str(), c.shared ? "(the tied embedding's copy)" : "");
      }
      for (const CommGroup& g : p.groups) {
        std::string ranks;
        for (int q : g.ranks) ranks += (ranks.empty() ? "" : ",") + std::to_string(q);
        std::printf("  group: %-12s ranks %s\n", g.name.c_str(), ranks.c_str());
      }
      for (const CommStep& c : p.steps) {
        std::string peers;
        for (int q : c.peers) peers += (peers.empty() ? "" : ",") + std::to_string(q);
        std::printf("  comm: %-17s at %-22s %s %s\n", comm_step_name(c.kind), c.anchor.c_str(),
                    c.group.empty() ? "peer" : ("group " + c.group + ":").c_str(), peers.c_str());
      }
    }
  }
  if (json) std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace hpcinfer::cli
