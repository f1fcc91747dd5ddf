// hpcinfer plan --show CONFIG [--set k=v]... [--context N] [--json]: every rank's plan, without loading weights.
// Per rank: layers, tensor-parallel slices, weight shards with their bytes (in the configured weight format), the
// KV cache for batching.batch_size sequences of --context tokens, and the communication steps of one forward pass.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/cli/cli_util.hpp"
#include "core/config/config_error.hpp"
#include "core/config/load_config.hpp"
#include "core/runtime/rank_session.hpp"

namespace hpcinfer::cli {
namespace {

double bytes_per_value(const std::string& weights) {
  if (weights == "bf16" || weights == "f16") return 2.0;
  if (weights == "int8") return 1.0 + 4.0 / 32.0;  // int8 values + one f32 scale per group of 32 (upper bound)
  return 4.0;
}

std::string mib(double b) {
  char s[32];
  std::snprintf(s, sizeof s, "%.2f MiB", b / (1024.0 * 1024.0));
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
  app.add_flag("--show", show, "print the plan (the default and only action)");
  app.add_option("config", config, "experiment YAML")->required();
  app.add_option("--set", sets, "override a key: key.path=value (repeatable)");
  app.add_option("--context", context, "KV-cache length per sequence (default: the model's max_seq_len)");
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
  nlohmann::json out = nlohmann::json::array();
  std::unique_ptr<RankSession> first;
  for (int r = 0; r < world; ++r) {
    LaunchEnv env;
    env.rank = r;
    env.size = world;
    auto s = describe_rank(cfg, env);
    const ModelDesc& m = s->model->desc();
    const double bpv = bytes_per_value(s->weights_plugin);
    const int ctx = context > 0 ? context : m.max_seq_len;
    const RankPlan& p = s->plan;
    double weight_bytes = 0;
    nlohmann::json shards = nlohmann::json::array();
    for (const WeightShard& w : p.shards) {
      const bool vec = w.rows.size() == 1;  // norms and biases stay f32
      const double b = double(w.rows.size()) * double(w.cols.size()) * (vec ? 4.0 : bpv);
      weight_bytes += b;
      shards.push_back({{"tensor", w.tensor}, {"rows", {w.rows.begin, w.rows.end}}, {"cols", {w.cols.begin, w.cols.end}}, {"bytes", b}});
    }
    const double kv = 2.0 * 4.0 * double(p.layer_end - p.layer_begin) * double(cfg.batching.batch_size) * ctx *
                      double(p.kv_heads.size()) * double(m.head_dim);
    nlohmann::json steps = nlohmann::json::array();
    for (const CommStep& c : p.steps) steps.push_back({{"kind", comm_step_name(c.kind)}, {"where", c.where}, {"peers", c.peers}});
    out.push_back({{"rank", r}, {"tp_rank", p.world.tp_rank()}, {"pp_rank", p.world.pp_rank()},
                   {"layers", {p.layer_begin, p.layer_end}}, {"embedding", p.has_embedding}, {"head", p.has_head},
                   {"q_heads", {p.q_heads.begin, p.q_heads.end}}, {"kv_heads", {p.kv_heads.begin, p.kv_heads.end}},
                   {"ffn", {p.ffn.begin, p.ffn.end}}, {"weights_plugin", s->weights_plugin},
                   {"weight_bytes", weight_bytes}, {"kv_cache_bytes", kv}, {"kv_context", ctx},
                   {"shards", shards}, {"steps", steps}});
    if (!json) {
      std::printf("rank %d (tp %d, pp %d): layers [%d, %d)%s%s, q heads [%lld, %lld), kv heads [%lld, %lld), ffn [%lld, %lld)\n",
                  r, p.world.tp_rank(), p.world.pp_rank(), p.layer_begin, p.layer_end, p.has_embedding ? " +embedding" : "",
                  p.has_head ? " +head" : "", (long long)p.q_heads.begin, (long long)p.q_heads.end,
                  (long long)p.kv_heads.begin, (long long)p.kv_heads.end, (long long)p.ffn.begin, (long long)p.ffn.end);
      std::printf("  weights (%s): %s in %zu shards; KV cache: %s (%d sequences x %d tokens)\n", s->weights_plugin.c_str(),
                  mib(weight_bytes).c_str(), p.shards.size(), mib(kv).c_str(), cfg.batching.batch_size, ctx);
      for (const WeightShard& w : p.shards)
        std::printf("    %-24s rows [%lld, %lld) cols [%lld, %lld)\n", w.tensor.c_str(), (long long)w.rows.begin,
                    (long long)w.rows.end, (long long)w.cols.begin, (long long)w.cols.end);
      for (const CommStep& c : p.steps) {
        std::string peers;
        for (int q : c.peers) peers += (peers.empty() ? "" : ",") + std::to_string(q);
        std::printf("  comm: %-17s %-22s peers %s\n", comm_step_name(c.kind), c.where.c_str(), peers.c_str());
      }
    }
  }
  if (json) std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace hpcinfer::cli
