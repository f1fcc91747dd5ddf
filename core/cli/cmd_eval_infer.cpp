// hpcinfer eval infer --model M [--weights W] [--threads N] [--warmup 1] [--trials 3] [--quick] [--memory-budget-gb G]
//                     [--json]
// The inference-speed sweep of one process (random token ids, greedy argmax of the logits, as `bench`):
//   prefill  B sequences of S tokens in one forward pass, B in {1,4,8} x S in {256,512,1024,2048,4096};
//            tokens/s = B*S / seconds (embedding to the logits of each sequence's last position).
//   decode   B sequences decoded together for `gen` steps that end at context `ctx` (an untimed prefill of
//            ctx - gen tokens first), ctx in {512,1024,2048} x gen in {64,128} x B in {1,4}; tokens/s = B*gen / s.
// Every point: --warmup untimed runs, then --trials timed ones; mean/std/min/max/p50/p90/p99 of tokens/s.
// A point is skipped, with its reason, when it needs more context than the model has (max_seq_len) or when its KV
// cache plus activations exceed the memory budget (default: half of this machine's physical memory).
// --quick: prefill B {1,4} x S {128,512,1024}, decode ctx {512,1024} x gen 16 x B {1,4} (seconds on stories260K).
// --prefill-batches / --prefill-lens / --decode-ctx / --decode-gen / --decode-batches (comma lists) replace one
// list of the grid each; --prefill-lens with nothing else chosen keeps the other lists.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

#include "core/cli/cli_util.hpp"
#include "core/cli/eval_commands.hpp"
#include "core/cli/single_process.hpp"
#include "core/eval/sample_stats.hpp"
#include "core/model/cost_model.hpp"

namespace hpcinfer::cli {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Point {
  std::string phase;  // "prefill" | "decode"
  int batch = 1, seq = 0, gen = 0;  // prefill: seq = S; decode: seq = final context, gen = decoded steps
  std::string skip_reason;
  std::vector<double> tok_s;
};


double physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? double(pages) * double(page) : 8e9;
}

}  // namespace

int cmd_eval_infer(const Args& args) {
  CLI::App app{"Prefill and decode tokens/s over a grid of batch sizes and sequence lengths", "hpcinfer eval infer"};
  ModelOptions mo;
  mo.add_to(app);
  int warmup = 1, trials = 3;
  bool quick = false, json = false;
  double budget_gb = 0;
  app.add_option("--warmup", warmup, "untimed runs per point (default 1)")->check(CLI::NonNegativeNumber);
  app.add_option("--trials", trials, "timed runs per point (default 3)")->check(CLI::PositiveNumber);
  app.add_flag("--quick", quick, "a small grid: prefill S <= 1024, decode gen 16 (seconds on a tiny model)");
  app.add_option("--memory-budget-gb", budget_gb, "KV cache + activations per point (default: half the RAM)");
  app.add_flag("--json", json, "print one JSON object");
  std::vector<int> g_pre_b, g_pre_s, g_ctx, g_gen, g_dec_b;  // a grid of one's own (each replaces its default list)
  app.add_option("--prefill-batches", g_pre_b, "prefill B values, e.g. 1,4,8")->delimiter(',')->check(CLI::PositiveNumber);
  app.add_option("--prefill-lens", g_pre_s, "prefill S values, e.g. 256,512")->delimiter(',')->check(CLI::PositiveNumber);
  app.add_option("--decode-ctx", g_ctx, "decode final contexts, e.g. 512,2048")->delimiter(',')->check(CLI::PositiveNumber);
  app.add_option("--decode-gen", g_gen, "decode steps, e.g. 64,128")->delimiter(',')->check(CLI::PositiveNumber);
  app.add_option("--decode-batches", g_dec_b, "decode B values, e.g. 1,4")->delimiter(',')->check(CLI::PositiveNumber);
  if (auto rc = parse_args(app, args)) return *rc;
  const double budget = budget_gb > 0 ? budget_gb * 1e9 : physical_memory_bytes() / 2;

  std::vector<Point> points;
  auto pick = [](const std::vector<int>& own, std::vector<int> dflt) { return own.empty() ? dflt : own; };
  const std::vector<int> pre_b = pick(g_pre_b, quick ? std::vector<int>{1, 4} : std::vector<int>{1, 4, 8});
  const std::vector<int> pre_s =
      pick(g_pre_s, quick ? std::vector<int>{128, 512, 1024} : std::vector<int>{256, 512, 1024, 2048, 4096});
  const std::vector<int> dec_ctx = pick(g_ctx, quick ? std::vector<int>{512, 1024} : std::vector<int>{512, 1024, 2048});
  const std::vector<int> dec_gen = pick(g_gen, quick ? std::vector<int>{16} : std::vector<int>{64, 128});
  const std::vector<int> dec_b = pick(g_dec_b, {1, 4});
  for (int b : pre_b)
    for (int s : pre_s) points.push_back({"prefill", b, s, 0, "", {}});
  for (int c : dec_ctx)
    for (int g : dec_gen)
      for (int b : dec_b) points.push_back({"decode", b, c, g, "", {}});

  // The model's shape first (no weights), to skip what cannot fit.
  // KV cache and activations of each point by the cost model (core/model/cost_model.hpp), f32 weights assumed for
  // the shape-only description (the weights are not part of the budget).
  ModelDesc m;
  RankPlan whole;
  {
    ExperimentConfig cfg;
    cfg.model.path = mo.model;
    cfg.model.format = mo.format;
    auto d = describe_rank(cfg, LaunchEnv{});
    m = d->model->desc();
    whole = d->plan;
  }
  const RankCost cost = rank_cost(m, whole, nullptr);
  for (Point& p : points) {
    const int tokens = p.phase == "prefill" ? p.batch * p.seq : p.batch * std::max(p.seq - p.gen, 1);
    const MemoryPlan mem = memory_plan(m, whole, cost, p.batch, p.seq, tokens, 1);
    const double need = mem.kv_cache + mem.activations + mem.workspace;
    char why[160];
    if (p.seq > m.max_seq_len) {
      std::snprintf(why, sizeof why, "context %d exceeds the model's max context %d", p.seq, m.max_seq_len);
      p.skip_reason = why;
    } else if (need > budget) {
      std::snprintf(why, sizeof why, "needs %.2f GB of KV cache and activations, over the %.2f GB budget", need / 1e9,
                    budget / 1e9);
      p.skip_reason = why;
    }
    if (!p.skip_reason.empty())
      std::fprintf(stderr, "eval infer: skip %s B=%d %s=%d: %s\n", p.phase.c_str(), p.batch,
                   p.phase == "prefill" ? "S" : "ctx", p.seq, p.skip_reason.c_str());
  }

  // Sessions: one is reused while it has enough slots and context for the point, else reopened at the point's size.
  std::unique_ptr<RankSession> s;
  int have_slots = 0, have_ctx = 0, threads = 0;
  std::string weights_plugin;
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> tok(3, int(std::max<int64_t>(m.vocab, 4)) - 1);
  for (Point& p : points) {
    if (!p.skip_reason.empty()) continue;
    if (!s || have_slots < p.batch || have_ctx < p.seq) {
      s.reset();
      s = open_single_process(mo, p.batch, p.seq, false);
      have_slots = p.batch, have_ctx = p.seq, threads = s->threads(), weights_plugin = s->weights_plugin;
    }
    const int prompt = p.phase == "prefill" ? p.seq : p.seq - p.gen;
    TokenBatch pre;
    std::vector<int> last_rows;
    for (int q = 0; q < p.batch; ++q) {
      for (int i = 0; i < prompt; ++i) pre.tokens.push_back(tok(rng)), pre.slot.push_back(q), pre.pos.push_back(i);
      last_rows.push_back(q * prompt + prompt - 1);
    }
    for (int run = 0; run < warmup + trials; ++run) {
      double secs = 0, tokens = 0;
      if (p.phase == "prefill") {
        const auto t0 = Clock::now();
        greedy_step(*s, pre, last_rows);
        secs = since(t0), tokens = double(p.batch) * p.seq;
      } else {
        std::vector<int> cur = greedy_step(*s, pre, last_rows);  // untimed: the context up to ctx - gen
        std::vector<int> rows(static_cast<size_t>(p.batch));
        for (int q = 0; q < p.batch; ++q) rows[size_t(q)] = q;
        const auto t0 = Clock::now();
        for (int t = 0; t < p.gen; ++t) {
          TokenBatch b;
          for (int q = 0; q < p.batch; ++q)
            b.tokens.push_back(cur[size_t(q)]), b.slot.push_back(q), b.pos.push_back(prompt + t);
          cur = greedy_step(*s, b, rows);
        }
        secs = since(t0), tokens = double(p.batch) * p.gen;
      }
      if (run >= warmup) p.tok_s.push_back(tokens / std::max(secs, 1e-9));
    }
  }

  nlohmann::ordered_json pts = nlohmann::ordered_json::array();
  for (const Point& p : points) {
    nlohmann::ordered_json j = {{"phase", p.phase}, {"batch", p.batch}};
    if (p.phase == "prefill") j["seq"] = p.seq;
    else j["ctx"] = p.seq, j["gen"] = p.gen;
    if (!p.skip_reason.empty()) {
      j["status"] = "skipped";
      j["reason"] = p.skip_reason;
    } else {
      const eval::SampleStats st = eval::summarize(p.tok_s);
      j["status"] = "ok";
      j["tok_s"] = {{"mean", st.mean}, {"std", st.stddev}, {"min", st.min}, {"max", st.max},
                    {"p50", st.p50}, {"p90", st.p90}, {"p99", st.p99}};
      j["trials_tok_s"] = p.tok_s;
    }
    pts.push_back(j);
  }
  nlohmann::ordered_json out = {{"suite", "infer"}, {"model", mo.model}, {"weights", weights_plugin},
                                {"threads", threads}, {"warmup", warmup}, {"trials", trials}, {"quick", quick},
                                {"max_context", m.max_seq_len}, {"memory_budget_bytes", budget},
                                {"kv_bytes_per_token", cost.kv_bytes_per_token}, {"points", pts}};
  if (json) {
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("eval infer: %s, weights %s, %d threads, warmup %d, trials %d; tokens/s\n", mo.model.c_str(),
              weights_plugin.c_str(), threads, warmup, trials);
  std::printf("%-8s %3s %6s %5s %12s %10s %12s %12s %12s\n", "phase", "B", "S/ctx", "gen", "mean", "std", "p50", "p90",
              "p99");
  for (const Point& p : points) {
    if (!p.skip_reason.empty()) {
      std::printf("%-8s %3d %6d %5d skipped: %s\n", p.phase.c_str(), p.batch, p.seq, p.gen, p.skip_reason.c_str());
      continue;
    }
    const eval::SampleStats st = eval::summarize(p.tok_s);
    std::printf("%-8s %3d %6d %5d %12.1f %10.1f %12.1f %12.1f %12.1f\n", p.phase.c_str(), p.batch, p.seq, p.gen, st.mean,
                st.stddev, st.p50, st.p90, st.p99);
  }
  return 0;
}

}  // namespace hpcinfer::cli
