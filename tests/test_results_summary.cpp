// summary.json from a hand-made raw.json: each number against its definition, the baseline's efficiency, the CSV and
// the Chrome trace layout. No model needed (real runs: test_results_bundle).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/results/host_info.hpp"
#include "core/results/stats.hpp"
#include "core/results/summary.hpp"
#include "core/results/trace_json.hpp"
#include "core/runtime/span_log.hpp"

using namespace hpcinfer;
using nlohmann::json;

namespace {

json rank_metrics(int rank, double wall, double compute, double idle, double cpu, int threads) {
  return {{"rank", rank},        {"engine_wall_s", wall},   {"total_wall_s", wall + 1}, {"compute_s", compute},
          {"send_s", 0.01},      {"idle_recv_wait_s", idle}, {"comm_s", idle + 0.01}, {"tp_allreduce_s", 0.0},   {"comm_bytes_sent", 1000 + rank},
          {"comm_bytes_received", 2000}, {"weight_load_s", 0.5 * (rank + 1)}, {"weight_bytes", 4096},
          {"tokenize_s", 0.001}, {"peak_rss_bytes", 1 << 20}, {"cpu_user_s", cpu},       {"cpu_sys_s", 0.0},
          {"threads", threads}};
}

json request(int index, int gen, double ttft, double latency, double tpot) {
  return {{"id", "r" + std::to_string(index)}, {"index", index}, {"prompt_tokens", 3 + index},
          {"generated_tokens", gen}, {"ttft_s", ttft}, {"latency_s", latency}, {"tpot_s", tpot}};
}

// raw.json of `world` ranks; the slowest rank's engine wall is 2 s.
json make_raw(int world) {
  json ranks = json::array();
  for (int r = 0; r < world; ++r) ranks.push_back(rank_metrics(r, 2.0 - 0.5 * r, 1.0, 0.2 * r, 2.5, 2));
  return {{"run", {{"world_size", world}}},
          {"requests",
           {request(0, 10, 0.1, 1.0, 0.1), request(1, 20, 0.3, 1.5, 0.06), request(2, 1, 0.2, 0.2, 0.0),
            request(3, 30, 0.4, 2.0, 0.055)}},
          {"ranks", ranks}};
}

std::vector<std::string> csv_cells(const std::string& line) {
  std::vector<std::string> out{""};
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == '"' && quoted && i + 1 < line.size() && line[i + 1] == '"') out.back() += c, ++i;
    else if (c == '"') quoted = !quoted;
    else if (c == ',' && !quoted) out.emplace_back();
    else out.back() += c;
  }
  return out;
}

}  // namespace

TEST(ResultsStats, PercentilesInterpolateAndStdIsTheSampleOne) {
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 50), 2.5);
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 100), 4);
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 0), 1);
  EXPECT_NEAR(percentile({10, 20}, 90), 19.0, 1e-12);
  const json d = describe({2, 4, 4, 4, 5, 5, 7, 9});
  EXPECT_DOUBLE_EQ(d["mean"].get<double>(), 5.0);
  EXPECT_NEAR(d["std"].get<double>(), std::sqrt(32.0 / 7.0), 1e-12);
  EXPECT_EQ(d["n"], 8);
  const json empty = describe({});
  EXPECT_EQ(empty["n"], 0);
  EXPECT_TRUE(empty["p99"].is_null());
  EXPECT_EQ(describe({3})["std"].get<double>(), 0.0);
}

TEST(ResultsSummary, EveryNumberFollowsFromRaw) {
  const json raw = make_raw(2);
  const json s = summarize_raw(raw);
  EXPECT_EQ(s["requests"], 4);
  EXPECT_EQ(s["generated_tokens"], 61);
  EXPECT_EQ(s["prompt_tokens"], 3 + 4 + 5 + 6);
  EXPECT_DOUBLE_EQ(s["wall_s"].get<double>(), 2.0);  // the slowest rank
  EXPECT_DOUBLE_EQ(s["tokens_per_s"].get<double>(), 61 / 2.0);
  EXPECT_DOUBLE_EQ(s["prompts_per_s"].get<double>(), 4 / 2.0);
  EXPECT_EQ(s["ttft_s"]["n"], 4);
  EXPECT_DOUBLE_EQ(s["ttft_s"]["p50"].get<double>(), 0.25);
  EXPECT_EQ(s["tpot_s"]["n"], 3);  // the one-token request has no TPOT
  EXPECT_NEAR(s["tpot_s"]["mean"].get<double>(), (0.1 + 0.06 + 0.055) / 3, 1e-12);
  EXPECT_DOUBLE_EQ(s["compute_s"]["sum"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(s["idle_s"]["max"].get<double>(), 0.2);
  EXPECT_NEAR(s["compute_share"].get<double>(), 2.0 / (2.0 + 1.5), 1e-12);
  EXPECT_EQ(s["bytes_sent"], 2001);
  EXPECT_DOUBLE_EQ(s["weight_load_s"]["max"].get<double>(), 1.0);
  // CPU utilisation: (user + sys) / (total wall x threads) per rank: 2.5 / (3 x 2) and 2.5 / (2.5 x 2).
  EXPECT_NEAR(s["cpu_utilization"]["min"].get<double>(), 2.5 / 6.0, 1e-12);
  EXPECT_NEAR(s["cpu_utilization"]["max"].get<double>(), 0.5, 1e-12);
  EXPECT_TRUE(s["parallel_efficiency"].is_null());
  EXPECT_TRUE(s["speedup"].is_null());
  EXPECT_TRUE(s["gpu_memory_bytes"].is_null());
  for (const char* k : {"tokens_per_s", "ttft_s", "tpot_s", "compute_s", "idle_s", "bytes_sent", "weight_load_s",
                        "tokenize_s", "peak_rss_bytes", "cpu_utilization", "parallel_efficiency"})
    EXPECT_TRUE(s["sources"].contains(k)) << k << " has no raw.json source";
}

TEST(ResultsSummary, BaselineGivesSpeedupAndEfficiency) {
  json base = make_raw(1);
  base["ranks"][0]["engine_wall_s"] = 3.05;  // 61 tokens in 3.05 s: 20 tokens/s
  const json s = summarize_raw(make_raw(2), base, "runs/single");
  ASSERT_FALSE(s["parallel_efficiency"].is_null());
  const double speedup = (61 / 2.0) / (61 / 3.05);
  EXPECT_NEAR(s["speedup"].get<double>(), speedup, 1e-12);
  EXPECT_NEAR(s["parallel_efficiency"].get<double>(), speedup / 2.0, 1e-12);
  EXPECT_EQ(s["baseline"]["dir"], "runs/single");
  EXPECT_EQ(s["baseline"]["world_size"].get<double>(), 1.0);
}

TEST(ResultsSummary, CsvHasOneValuePerColumnAndMarkdownNamesSources) {
  const json s = summarize_raw(make_raw(2));
  std::istringstream in(summary_csv(s));
  std::string head, row, extra;
  ASSERT_TRUE(std::getline(in, head));
  ASSERT_TRUE(std::getline(in, row));
  EXPECT_FALSE(std::getline(in, extra) && !extra.empty());
  const auto h = csv_cells(head), v = csv_cells(row);
  ASSERT_EQ(h.size(), v.size());
  const auto at = std::find(h.begin(), h.end(), "tokens_per_s");
  ASSERT_NE(at, h.end());
  EXPECT_DOUBLE_EQ(std::stod(v[size_t(at - h.begin())]), s["tokens_per_s"].get<double>());
  EXPECT_NE(std::find(h.begin(), h.end(), "ttft_s.p99"), h.end());
  const std::string md = summary_markdown(s);
  EXPECT_NE(md.find("| tokens_per_s |"), std::string::npos);
  EXPECT_NE(md.find("sum(requests[].generated_tokens) / max(ranks[].engine_wall_s)"), std::string::npos);
  EXPECT_NE(md.find("no baseline run was given"), std::string::npos);
}

TEST(ResultsTrace, OneProcessPerRankAndMicrosecondSpans) {
  std::vector<json> reports;
  for (int r = 0; r < 2; ++r)
    reports.push_back({{"metrics", {{"rank", r}, {"host", "h"}, {"pp_rank", r}, {"tp_rank", 0}}},
                       {"spans", {{"compute", 0.5, 0.75, 0, 8}, {"send", 0.75, 0.76, 0, 8}}},
                       {"spans_dropped", r}});
  const json t = chrome_trace(reports);
  int x = 0;
  for (const json& e : t["traceEvents"]) {
    if (e["ph"] != "X") continue;
    ++x;
    EXPECT_EQ(e["cat"], e["name"] == "send" ? "comm" : "compute");
    if (e["name"] == "compute") {
      EXPECT_DOUBLE_EQ(e["ts"].get<double>(), 0.5e6);
      EXPECT_DOUBLE_EQ(e["dur"].get<double>(), 0.25e6);
      EXPECT_EQ(e["args"]["tokens"], 8);
    }
  }
  EXPECT_EQ(x, 4);
  EXPECT_EQ(t["otherData"]["spans_dropped_per_rank"][1], 1);
}

TEST(HostInfo, NvidiaSmiCsvIsParsedAndHostFactsArePresent) {
  const json d = parse_nvidia_smi_csv("0, NVIDIA H100 80GB HBM3, 550.54.15, 81559\n1, NVIDIA H100, 550.54.15, [N/A]\n");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0]["name"], "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(d[0]["driver"], "550.54.15");
  EXPECT_DOUBLE_EQ(d[0]["memory_total_mib"].get<double>(), 81559);
  EXPECT_TRUE(d[1]["memory_total_mib"].is_null());
  const json h = host_info_json();
  EXPECT_GT(h["logical_cores"].get<int>(), 0);
  EXPECT_FALSE(h["hostname"].get<std::string>().empty());
  EXPECT_TRUE(h["gpu"]["devices"].is_array());
}

TEST(SpanLogCap, KeepsTheFirstSpansAndCountsTheRest) {
  SpanLog log(3);
  for (int i = 0; i < 5; ++i) log.add("compute", i, i + 0.5, 0, 1);
  ASSERT_EQ(log.spans().size(), 3u);
  EXPECT_EQ(log.dropped(), 2u);
  EXPECT_DOUBLE_EQ(log.spans().back().start, 2.0);
  log.clear();
  EXPECT_TRUE(log.spans().empty());
  EXPECT_EQ(log.dropped(), 0u);
  EXPECT_EQ(SpanLog().cap(), SpanLog::kDefaultCap);
}
