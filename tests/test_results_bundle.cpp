// The results bundle of real runs on stories260K (a pp=2 gloo job and a single process): every file exists and
// parses, summary numbers follow from raw.json, raw.json agrees with completions.jsonl, the trace holds both ranks'
// spans and they add up to the ranks' counters; and `hpcinfer compare` of these runs. A few seconds in all.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/test_support.hpp"

using namespace hpcinfer::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr int kTokens = 16;

// stories260K, 8 prompts, greedy, top-3 logprobs, one thread per rank (the machine is shared: no oversubscription).
std::string write_config(const ScratchDir& dir) {
  const fs::path m = shared_data() / "models/stories260K";
  dir.write("exp.yaml", "model:\n  path: " + (m / "stories260K.bin").string() + "\n  tokenizer: " +
                            (m / "tok512.bin").string() + "\nworld:\n  timeout_s: 20\nthreads: 1\ninputs:\n  prompts: " +
                            (shared_data() / "prompts/stories8.jsonl").string() +
                            "\ngeneration:\n  max_new_tokens: " + std::to_string(kTokens) +
                            "\n  temperature: 0\nbatching:\n  batch_size: 4\n  micro_batches: 2\noutputs:\n"
                            "  logprobs: 3\n");
  return (dir / "exp.yaml").string();
}

// Runs a single-process experiment into dir/name with extra --set flags.
void run_single(const ScratchDir& dir, const std::string& cfg, const std::string& name, const std::string& sets = "") {
  auto r = run_command(bin() + " run " + cfg + " --set outputs.dir=" + (dir / name).string() + sets);
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

void run_pp2(const ScratchDir& dir, const std::string& cfg, const std::string& name, const std::string& sets = "") {
  auto r = run_command(bin() + " launch -n 2 " + cfg + " --set world.pp=2 --set plugins.comm=gloo --set outputs.dir=" +
                       (dir / name).string() + sets);
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

json load(const fs::path& p) {
  std::ifstream in(p);
  EXPECT_TRUE(in.good()) << p << " is missing";
  return json::parse(in);  // throws (test error) when it does not parse
}

double max_of(const json& rows, const char* key) {
  double m = 0;
  for (const json& r : rows) m = std::max(m, r.at(key).get<double>());
  return m;
}

// On one timeline a message arrives after it was sent: the i-th forward send of rank 0 starts before the i-th
// receive of rank 1 ends, and the i-th token message of rank 1 likewise before rank 0's i-th receive ends.
// tolerance_us: the clock alignment's error bound (0 for a shared clock, plus rounding).
void expect_causal(const json& trace, double tolerance_us = 0) {
  std::map<std::pair<int, std::string>, std::vector<const json*>> by;
  for (const json& e : trace.at("traceEvents"))
    if (e["ph"] == "X") by[{e["pid"].get<int>(), e["name"].get<std::string>()}].push_back(&e);
  const auto check = [&](int from, int to) {
    const auto& sends = by[{from, "send"}];
    const auto& recvs = by[{to, "recv_wait"}];
    ASSERT_FALSE(sends.empty());
    ASSERT_GE(recvs.size(), sends.size());
    for (size_t i = 0; i < sends.size(); ++i) {
      const double sent = (*sends[i])["ts"].get<double>();
      const double received = (*recvs[i])["ts"].get<double>() + (*recvs[i])["dur"].get<double>();
      EXPECT_GE(received + tolerance_us + 0.01, sent) << "message " << i << " from rank " << from << " to " << to;
    }
  };
  check(0, 1);
  check(1, 0);
}

json compare_json(const fs::path& a, const fs::path& b) {
  auto r = run_command(bin() + " compare " + a.string() + " " + b.string() + " --json 2>/dev/null");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return json::parse(r.output);
}

}  // namespace

TEST(ResultsBundle, Pp2RunHasEveryFileAndItsNumbersAgree) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  ScratchDir dir;
  const std::string cfg = write_config(dir);
  run_single(dir, cfg, "single");
  run_pp2(dir, cfg, "pp2", " --set outputs.baseline=" + (dir / "single").string());
  const fs::path run = dir / "pp2";
  for (const char* f : {"config.yaml", "completions.jsonl", "metrics/rank_0.json", "metrics/rank_1.json",
                        "ranks/rank_0.log", "env.json", "raw.json", "summary.json", "metrics.csv", "run_summary.md",
                        "trace.json"})
    EXPECT_TRUE(fs::is_regular_file(run / f)) << f;

  // env.json: the build and the host it ran on.
  const json env = load(run / "env.json");
  EXPECT_FALSE(env["build"]["git_commit"].get<std::string>().empty());
  EXPECT_FALSE(env["build"]["libraries"]["gloo"].get<std::string>().empty());
  ASSERT_GE(env["hosts"].size(), 1u);
  EXPECT_GT(env["hosts"][0]["logical_cores"].get<int>(), 0);
  EXPECT_EQ(env["ranks"].size(), 2u);
  EXPECT_EQ(env["hosts"][0]["node"], env["ranks"][0]["host"]);  // launch: both ranks on this one node
  EXPECT_EQ(env["hosts"].size(), 1u);
  // launch's ranks share the cores: their OpenMP threads spin briefly, then sleep (core/runtime/shared_cores_env.hpp).
  if (!std::getenv("OMP_WAIT_POLICY") && !std::getenv("GOMP_SPINCOUNT")) {
    EXPECT_EQ(env["environment"].value("GOMP_SPINCOUNT", ""), "2000");
    EXPECT_EQ(env["environment"].value("OMP_WAIT_POLICY", ""), "passive");
  }

  // raw.json agrees with completions.jsonl (written by the last stage, gathered to rank 0 separately).
  const json raw = load(run / "raw.json");
  ASSERT_EQ(raw["ranks"].size(), 2u);
  ASSERT_EQ(raw["requests"].size(), 8u);
  std::map<std::string, size_t> generated;
  std::ifstream comp(run / "completions.jsonl");
  for (std::string line; std::getline(comp, line);)
    if (!line.empty()) {
      const json c = json::parse(line);
      generated[c["id"].get<std::string>()] = c["token_ids"].size();
    }
  long total = 0;
  for (const json& r : raw["requests"]) {
    EXPECT_EQ(r["generated_tokens"].get<size_t>(), generated.at(r["id"].get<std::string>())) << r["id"];
    EXPECT_GE(r["ttft_s"].get<double>(), 0.0);
    EXPECT_GE(r["latency_s"].get<double>(), r["ttft_s"].get<double>());
    total += r["generated_tokens"].get<long>();
  }
  EXPECT_EQ(raw["ranks"][1]["generated_tokens"].get<long>(), total);  // the last stage's own count

  // summary.json follows from raw.json.
  const json s = load(run / "summary.json");
  const double wall = max_of(raw["ranks"], "engine_wall_s");
  ASSERT_GT(wall, 0.0);
  EXPECT_EQ(s["generated_tokens"].get<long>(), total);
  EXPECT_DOUBLE_EQ(s["wall_s"].get<double>(), wall);
  EXPECT_NEAR(s["tokens_per_s"].get<double>(), double(total) / wall, 1e-9 * double(total) / wall);
  EXPECT_NEAR(s["prompts_per_s"].get<double>(), 8.0 / wall, 1e-9 * 8.0 / wall);
  std::vector<double> ttft;
  for (const json& r : raw["requests"]) ttft.push_back(r["ttft_s"].get<double>());
  std::sort(ttft.begin(), ttft.end());
  EXPECT_DOUBLE_EQ(s["ttft_s"]["max"].get<double>(), ttft.back());
  EXPECT_DOUBLE_EQ(s["ttft_s"]["min"].get<double>(), ttft.front());
  EXPECT_EQ(s["bytes_sent"].get<long>(),
            raw["ranks"][0]["comm_bytes_sent"].get<long>() + raw["ranks"][1]["comm_bytes_sent"].get<long>());
  EXPECT_GT(s["bytes_sent"].get<long>(), 0);
  EXPECT_DOUBLE_EQ(s["peak_rss_bytes"]["max"].get<double>(), max_of(raw["ranks"], "peak_rss_bytes"));
  EXPECT_GT(s["cpu_utilization"]["max"].get<double>(), 0.0);
  // The baseline was given: efficiency = (tokens/s / baseline tokens/s) / (2 / 1).
  const json base_raw = load(dir / "single/raw.json");
  const json base_summary = load(dir / "single/summary.json");
  EXPECT_TRUE(base_summary["parallel_efficiency"].is_null());  // no baseline for the baseline itself
  ASSERT_FALSE(s["parallel_efficiency"].is_null());
  const double base_tps = base_summary["tokens_per_s"].get<double>();
  EXPECT_NEAR(s["parallel_efficiency"].get<double>(), s["tokens_per_s"].get<double>() / base_tps / 2.0,
              1e-9 * s["parallel_efficiency"].get<double>());
  EXPECT_EQ(base_raw["ranks"].size(), 1u);

  // metrics.csv: one header, one row, the same tokens/s.
  std::ifstream csv(run / "metrics.csv");
  std::string head, row;
  ASSERT_TRUE(std::getline(csv, head) && std::getline(csv, row));
  EXPECT_EQ(std::count(head.begin(), head.end(), ','), std::count(row.begin(), row.end(), ','))
      << "(no quoted commas expected in this run)";
  EXPECT_NE(read_file(run / "run_summary.md").find("| tokens_per_s |"), std::string::npos);

  // trace.json: spans of both ranks, non-negative, inside the run, adding up to the ranks' counters.
  const json trace = load(run / "trace.json");
  std::map<int, std::map<std::string, double>> dur;  // rank -> span name -> total seconds
  std::map<int, size_t> count;
  const json& rank_start = trace["otherData"]["rank_start_us"];
  ASSERT_EQ(rank_start.size(), 2u);
  EXPECT_EQ(std::min(rank_start[0].get<double>(), rank_start[1].get<double>()), 0.0);
  EXPECT_LT(std::max(rank_start[0].get<double>(), rank_start[1].get<double>()), 1e6) << "ranks start within 1 s";
  for (const json& e : trace.at("traceEvents")) {
    if (e["ph"] != "X") continue;
    const int pid = e["pid"].get<int>();
    const double ts = e["ts"].get<double>(), d = e["dur"].get<double>();
    EXPECT_GE(ts, 0.0);
    EXPECT_GE(d, 0.0);
    EXPECT_GE(ts, rank_start[size_t(pid)].get<double>());  // a rank's spans lie inside its engine run
    EXPECT_LE((ts + d - rank_start[size_t(pid)].get<double>()) * 1e-6,
              raw["ranks"][size_t(pid)]["engine_wall_s"].get<double>() + 1e-6);
    dur[pid][e["name"].get<std::string>()] += d * 1e-6;
    ++count[pid];
  }
  ASSERT_EQ(dur.size(), 2u) << "spans of both ranks";
  for (int r = 0; r < 2; ++r) {
    const json& m = raw["ranks"][size_t(r)];
    EXPECT_EQ(count[r], m["spans_recorded"].get<size_t>());
    EXPECT_EQ(m["spans_dropped"].get<long>(), 0);
    EXPECT_NEAR(dur[r]["compute"] + dur[r]["head"], m["compute_s"].get<double>(), 1e-6) << r;
    EXPECT_NEAR(dur[r]["send"], m["send_s"].get<double>(), 1e-6) << r;
    EXPECT_NEAR(dur[r]["recv_wait"], m["idle_recv_wait_s"].get<double>(), 1e-6) << r;
    EXPECT_GT(dur[r]["compute"], 0.0) << r;
    EXPECT_GT(dur[r]["recv_wait"], 0.0) << r;  // both stages receive in a pipeline
  }
  EXPECT_GT(dur[1]["head"], 0.0);  // the last stage samples
  EXPECT_EQ(dur[0]["head"], 0.0);
  expect_causal(trace);
}

// Ranks on another kernel align their clocks by ping-pong with rank 0; forced here on one host, where the true offset
// is 0: the estimate must be within its error bound (half the round trip) of it, and the trace still causal.
TEST(ResultsBundle, PingPongClockOffsetIsWithinItsBound) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  ScratchDir dir;
  const std::string cfg = write_config(dir);
  auto r = run_command("HPCINFER_CLOCK_PINGPONG=1 " + bin() + " launch -n 2 " + cfg +
                       " --set world.pp=2 --set outputs.dir=" + (dir / "pp2").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json raw = load(dir / "pp2/raw.json");
  const json& m = raw["ranks"][1];
  EXPECT_EQ(m["clock_sync"], "ping-pong");
  EXPECT_GT(m["clock_rtt_s"].get<double>(), 0.0);
  EXPECT_LE(std::abs(m["clock_offset_s"].get<double>()), m["clock_rtt_s"].get<double>() / 2 + 1e-9);
  EXPECT_EQ(raw["ranks"][0]["clock_sync"], "shared");  // rank 0 is the reference
  expect_causal(load(dir / "pp2/trace.json"), m["clock_rtt_s"].get<double>() / 2 * 1e6);
}

TEST(ResultsBundle, CompareFindsMatchesAndDivergences) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  ScratchDir dir;
  const std::string cfg = write_config(dir);
  run_single(dir, cfg, "single");
  run_pp2(dir, cfg, "pp2");
  run_single(dir, cfg, "short", " --set generation.max_new_tokens=" + std::to_string(kTokens / 2));
  run_single(dir, cfg, "sampled", " --set generation.temperature=1.5 --set generation.seed=3");

  // pp=2 against the single process: every prompt equal, the same distributions.
  const json same = compare_json(dir / "single", dir / "pp2");
  EXPECT_EQ(same["summary"]["prompts"], 8);
  EXPECT_EQ(same["summary"]["exact_matches"], 8);
  EXPECT_EQ(same["summary"]["kl_prompts"], 8);
  EXPECT_LE(same["summary"]["mean_kl"].get<double>(), 1e-9);
  EXPECT_EQ(same["summary"]["top_k"], 3);
  auto strict = run_command(bin() + " compare " + (dir / "single").string() + " " + (dir / "pp2").string() +
                            " --require-match --out " + (dir / "report.md").string());
  EXPECT_EQ(strict.exit_code, 0) << strict.output;
  EXPECT_NE(read_file(dir / "report.md").find("8 exact matches"), std::string::npos);

  // Fewer tokens: a prefix of the reference, diverging where the shorter run stops (a story that ended before
  // kTokens / 2 is the same in both).
  const json shorter = compare_json(dir / "single", dir / "short");
  EXPECT_GT(shorter["summary"]["mismatches"].get<int>(), 0);
  for (const json& p : shorter["prompts"]) {
    const size_t a = p["tokens_a"].get<size_t>(), b = p["tokens_b"].get<size_t>();
    EXPECT_LE(b, size_t(kTokens / 2)) << p["id"];
    if (a == b) {
      EXPECT_TRUE(p["exact_match"].get<bool>()) << p["id"];
      continue;
    }
    EXPECT_FALSE(p["exact_match"].get<bool>()) << p["id"];
    EXPECT_EQ(p["first_divergence"].get<size_t>(), std::min(a, b)) << p["id"];
  }
  EXPECT_EQ(run_command(bin() + " compare " + (dir / "single").string() + " " + (dir / "short").string() +
                        " --require-match").exit_code,
            1);

  // Sampling at temperature 1.5: the tokens drift apart; but up to and at the first divergence both runs saw the
  // same context, and logprobs are those of the model (temperature 1), so the KL there is still ~0.
  const json sampled = compare_json(dir / "single", dir / "sampled");
  EXPECT_GT(sampled["summary"]["mismatches"].get<int>(), 0);
  ASSERT_FALSE(sampled["summary"]["mean_first_divergence"].is_null());
  EXPECT_LT(sampled["summary"]["mean_first_divergence"].get<double>(), double(kTokens));
  EXPECT_LE(sampled["summary"]["max_kl"].get<double>(), 1e-9);
}

// Under tensor parallelism the all-reduces run inside the compute spans: their time is counted per rank
// (tp_allreduce_s, part of compute_s) and carried by each compute span (args.tp_allreduce_us).
TEST(ResultsBundle, TensorParallelAllReducesAreCountedInsideCompute) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  ScratchDir dir;
  const std::string cfg = write_config(dir);
  auto r = run_command(bin() + " launch -n 2 " + cfg + " --set world.tp=2 --set plugins.strategy=tp_pp --set outputs.dir=" +
                       (dir / "tp2").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json raw = load(dir / "tp2/raw.json");
  const json trace = load(dir / "tp2/trace.json");
  std::map<int, double> from_spans;
  for (const json& e : trace.at("traceEvents"))
    if (e["ph"] == "X" && e["args"].contains("tp_allreduce_us"))
      from_spans[e["pid"].get<int>()] += e["args"]["tp_allreduce_us"].get<double>() * 1e-6;
  ASSERT_EQ(raw["ranks"].size(), 2u);
  for (int k = 0; k < 2; ++k) {
    const json& m = raw["ranks"][size_t(k)];
    EXPECT_GT(m["tp_allreduce_s"].get<double>(), 0.0) << k;
    EXPECT_LE(m["tp_allreduce_s"].get<double>(), m["compute_s"].get<double>()) << k;
    EXPECT_NEAR(from_spans[k], m["tp_allreduce_s"].get<double>(), 1e-6) << k;
    EXPECT_GT(m["comm_bytes_sent"].get<long>(), 0) << k;
  }
  const json s = load(dir / "tp2/summary.json");
  EXPECT_NEAR(s["tp_allreduce_s"]["sum"].get<double>(),
              raw["ranks"][0]["tp_allreduce_s"].get<double>() + raw["ranks"][1]["tp_allreduce_s"].get<double>(), 1e-12);
}
