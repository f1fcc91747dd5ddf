#include "core/results/summary.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "core/results/stats.hpp"

namespace hpcinfer {
namespace {

using nlohmann::json;

double num(const json& obj, const char* key) {
  if (!obj.contains(key) || !obj[key].is_number())
    throw std::runtime_error(std::string("raw.json: missing number \"") + key + "\"");
  return obj[key].get<double>();
}

std::vector<double> column(const json& rows, const char* key) {
  std::vector<double> v;
  for (const json& r : rows) v.push_back(num(r, key));
  return v;
}

// The same for keys newer runs added (0 where an older raw.json lacks them).
std::vector<double> column_or_zero(const json& rows, const char* key) {
  std::vector<double> v;
  for (const json& r : rows) v.push_back(r.contains(key) && r[key].is_number() ? r[key].get<double>() : 0.0);
  return v;
}

// {sum, mean, max} of a per-rank quantity.
json over_ranks(const std::vector<double>& v) {
  if (v.empty()) return {{"sum", nullptr}, {"mean", nullptr}, {"max", nullptr}};
  double s = 0;
  for (double x : v) s += x;
  return {{"sum", s}, {"mean", s / double(v.size())}, {"max", *std::max_element(v.begin(), v.end())}};
}

// {min, mean, max}: for ratios, whose sum means nothing.
json spread(const std::vector<double>& v) {
  json j = over_ranks(v);
  j.erase("sum");
  j["min"] = v.empty() ? json(nullptr) : json(*std::min_element(v.begin(), v.end()));
  return j;
}

json ratio(double a, double b) { return b > 0 ? json(a / b) : json(nullptr); }

double sum_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

// tokens/s of a raw.json: the same definition as the summary's.
double tokens_per_s_of(const json& raw) {
  const std::vector<double> walls = column(raw.at("ranks"), "engine_wall_s");
  const double wall = walls.empty() ? 0.0 : *std::max_element(walls.begin(), walls.end());
  return wall > 0 ? sum_of(column(raw.at("requests"), "generated_tokens")) / wall : 0.0;
}

void flatten(const json& j, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
    return;
  }
  std::string v;
  if (j.is_null()) v = "";
  else if (j.is_string()) v = j.get<std::string>();
  else if (j.is_array()) v = j.dump();
  else v = j.dump();
  if (v.find_first_of(",\"\n") != std::string::npos) {  // RFC 4180 quoting
    std::string q = "\"";
    for (char c : v) q += (c == '"') ? std::string("\"\"") : std::string(1, c);
    v = q + "\"";
  }
  out.emplace_back(prefix, v);
}

std::string fmt(const json& v, const char* unit = "") {
  if (v.is_null()) return "null";
  if (!v.is_number()) return v.dump();
  char b[64];
  std::snprintf(b, sizeof b, "%.4g%s", v.get<double>(), unit);
  return b;
}

}  // namespace

json summarize_raw(const json& raw, const json& baseline_raw, const std::string& baseline_dir) {
  const json& reqs = raw.at("requests");
  const json& ranks = raw.at("ranks");
  const double n_req = double(reqs.size());
  const double gen = sum_of(column(reqs, "generated_tokens"));
  const std::vector<double> engine_wall = column(ranks, "engine_wall_s");
  const double wall = engine_wall.empty() ? 0.0 : *std::max_element(engine_wall.begin(), engine_wall.end());
  std::vector<double> tpot, cpu_util;
  for (const json& r : reqs)
    if (num(r, "generated_tokens") >= 2) tpot.push_back(num(r, "tpot_s"));
  for (const json& r : ranks) {
    const double denom = num(r, "total_wall_s") * num(r, "threads");
    cpu_util.push_back(denom > 0 ? (num(r, "cpu_user_s") + num(r, "cpu_sys_s")) / denom : 0.0);
  }
  const std::vector<double> compute = column(ranks, "compute_s"), idle = column(ranks, "idle_recv_wait_s");
  json s{{"format", "hpcinfer-summary-1"},
         {"run", raw.value("run", json::object())},
         {"requests", reqs.size()},
         {"prompt_tokens", int64_t(sum_of(column(reqs, "prompt_tokens")))},
         {"generated_tokens", int64_t(gen)},
         {"wall_s", wall},
         {"total_wall_s", over_ranks(column(ranks, "total_wall_s"))["max"]},
         {"tokens_per_s", ratio(gen, wall)},
         {"prompts_per_s", ratio(n_req, wall)},
         {"ttft_s", describe(column(reqs, "ttft_s"))},
         {"tpot_s", describe(tpot)},
         {"latency_s", describe(column(reqs, "latency_s"))},
         {"compute_s", over_ranks(compute)},
         {"send_s", over_ranks(column(ranks, "send_s"))},
         {"idle_s", over_ranks(idle)},
         {"comm_s", over_ranks(column(ranks, "comm_s"))},
         {"tp_allreduce_s", over_ranks(column(ranks, "tp_allreduce_s"))},
         {"compute_share", ratio(sum_of(compute), sum_of(engine_wall))},
         {"idle_share", ratio(sum_of(idle), sum_of(engine_wall))},
         {"bytes_sent", int64_t(sum_of(column(ranks, "comm_bytes_sent")))},
         {"bytes_received", int64_t(sum_of(column(ranks, "comm_bytes_received")))},
         {"weight_load_s", over_ranks(column(ranks, "weight_load_s"))},
         {"weight_read_s", over_ranks(column_or_zero(ranks, "weight_read_s"))},
         {"weight_pack_s", over_ranks(column_or_zero(ranks, "weight_pack_s"))},
         {"weight_bytes", int64_t(sum_of(column(ranks, "weight_bytes")))},
         {"tokenize_s", over_ranks(column(ranks, "tokenize_s"))},
         {"peak_rss_bytes", over_ranks(column(ranks, "peak_rss_bytes"))},
         {"gpu_memory_bytes", sum_of(column_or_zero(ranks, "device_memory_peak_bytes")) > 0
                                  ? over_ranks(column_or_zero(ranks, "device_memory_peak_bytes")) : json(nullptr)},
         {"cpu_utilization", spread(cpu_util)},
         {"speedup", nullptr},
         {"parallel_efficiency", nullptr},
         {"baseline", {{"dir", nullptr}, {"tokens_per_s", nullptr}, {"world_size", nullptr}}}};
  if (!baseline_raw.is_null()) {
    const double tps_b = tokens_per_s_of(baseline_raw);
    const double world = double(ranks.size()), world_b = double(baseline_raw.at("ranks").size());
    s["baseline"] = {{"dir", baseline_dir}, {"tokens_per_s", tps_b}, {"world_size", world_b}};
    if (tps_b > 0 && wall > 0 && world_b > 0) {
      s["speedup"] = (gen / wall) / tps_b;
      s["parallel_efficiency"] = (gen / wall) / tps_b / (world / world_b);
    }
  }
  s["sources"] = {
      {"requests", "len(requests)"},
      {"prompt_tokens", "sum(requests[].prompt_tokens)"},
      {"generated_tokens", "sum(requests[].generated_tokens)"},
      {"wall_s", "max(ranks[].engine_wall_s)"},
      {"total_wall_s", "max(ranks[].total_wall_s) (includes weight load and tokenization)"},
      {"tokens_per_s", "sum(requests[].generated_tokens) / max(ranks[].engine_wall_s)"},
      {"prompts_per_s", "len(requests) / max(ranks[].engine_wall_s)"},
      {"ttft_s", "requests[].ttft_s"},
      {"tpot_s", "requests[].tpot_s where requests[].generated_tokens >= 2"},
      {"latency_s", "requests[].latency_s"},
      {"compute_s", "ranks[].compute_s"},
      {"send_s", "ranks[].send_s"},
      {"idle_s", "ranks[].idle_recv_wait_s"},
      {"comm_s", "ranks[].comm_s"},
      {"tp_allreduce_s", "ranks[].tp_allreduce_s (every collective of a tp group: all-reduce, all-gather, all-to-all; inside compute_s)"},
      {"compute_share", "sum(ranks[].compute_s) / sum(ranks[].engine_wall_s)"},
      {"idle_share", "sum(ranks[].idle_recv_wait_s) / sum(ranks[].engine_wall_s)"},
      {"bytes_sent", "sum(ranks[].comm_bytes_sent)"},
      {"bytes_received", "sum(ranks[].comm_bytes_received)"},
      {"weight_load_s", "ranks[].weight_load_s (building the stage: read + pack)"},
      {"weight_read_s", "ranks[].weight_read_s (the matrices' file pages brought into memory)"},
      {"weight_pack_s", "ranks[].weight_pack_s (weight_load_s - weight_read_s)"},
      {"weight_bytes", "sum(ranks[].weight_bytes)"},
      {"tokenize_s", "ranks[].tokenize_s"},
      {"peak_rss_bytes", "ranks[].peak_rss_bytes"},
      {"gpu_memory_bytes", "ranks[].device_memory_peak_bytes (device backends; null on the cpu backend)"},
      {"cpu_utilization", "(ranks[].cpu_user_s + ranks[].cpu_sys_s) / (ranks[].total_wall_s * ranks[].threads)"},
      {"speedup", "tokens_per_s / baseline tokens_per_s (baseline raw.json, same formula); null without outputs.baseline"},
      {"parallel_efficiency", "speedup / (len(ranks) / len(baseline ranks)); null without outputs.baseline"}};
  return s;
}

std::string summary_csv(const json& summary) {
  json copy = summary;
  copy.erase("sources");
  std::vector<std::pair<std::string, std::string>> cells;
  flatten(copy, "", cells);
  std::string head, row;
  for (size_t i = 0; i < cells.size(); ++i) {
    head += (i ? "," : "") + cells[i].first;
    row += (i ? "," : "") + cells[i].second;
  }
  return head + "\n" + row + "\n";
}

std::string summary_markdown(const json& s) {
  std::ostringstream o;
  const json& run = s.at("run");
  o << "# Run summary\n\n";
  if (!run.empty()) {
    o << "world " << run.value("world_size", 0) << " (tp " << run.value("tp", 0) << " x pp " << run.value("pp", 0)
      << "), comm " << run.value("comm", "") << ", weights " << run.value("weights", "") << ", strategy "
      << run.value("strategy", "") << ", batch " << run.value("batch_size", 0) << ", micro-batches "
      << run.value("micro_batches", 0) << ", max_new_tokens " << run.value("max_new_tokens", 0) << "\n\n";
  }
  o << "Every number below is computed from `raw.json` (fields in the last column; `summary.json` holds the same "
       "numbers unrounded). Per-rank values are sum / mean / max over ranks; TTFT, TPOT and latency are per request.\n\n";
  o << "| metric | value | from raw.json |\n|---|---|---|\n";
  const json& src = s.at("sources");
  auto row = [&](const char* key, const std::string& value) {
    o << "| " << key << " | " << value << " | `" << src.value(key, "") << "` |\n";
  };
  auto dist = [&](const char* key) {
    const json& d = s.at(key);
    row(key, "n " + d.at("n").dump() + ", mean " + fmt(d["mean"]) + ", std " + fmt(d["std"]) + ", p50 " +
                 fmt(d["p50"]) + ", p90 " + fmt(d["p90"]) + ", p99 " + fmt(d["p99"]));
  };
  auto ranks3 = [&](const char* key) {
    const json& d = s.at(key);
    row(key, fmt(d["sum"]) + " / " + fmt(d["mean"]) + " / " + fmt(d["max"]));
  };
  for (const char* k : {"requests", "prompt_tokens", "generated_tokens", "wall_s", "total_wall_s", "tokens_per_s",
                        "prompts_per_s"})
    row(k, fmt(s.at(k)));
  for (const char* k : {"ttft_s", "tpot_s", "latency_s"}) dist(k);
  for (const char* k : {"compute_s", "send_s", "idle_s", "comm_s", "tp_allreduce_s"}) ranks3(k);
  for (const char* k : {"compute_share", "idle_share", "bytes_sent", "bytes_received"}) row(k, fmt(s.at(k)));
  for (const char* k : {"weight_load_s", "weight_read_s", "weight_pack_s"}) ranks3(k);
  row("weight_bytes", fmt(s.at("weight_bytes")));
  for (const char* k : {"tokenize_s", "peak_rss_bytes"}) ranks3(k);
  row("cpu_utilization", fmt(s["cpu_utilization"]["min"]) + " / " + fmt(s["cpu_utilization"]["mean"]) + " / " +
                             fmt(s["cpu_utilization"]["max"]) + " (min / mean / max)");
  row("gpu_memory_bytes", fmt(s.at("gpu_memory_bytes")));
  row("speedup", fmt(s.at("speedup")));
  row("parallel_efficiency", fmt(s.at("parallel_efficiency")));
  if (s.at("baseline").at("dir").is_null())
    o << "\nspeedup and parallel_efficiency are null: no baseline run was given (`outputs.baseline: DIR`, the results "
         "directory of the reference run, e.g. world size 1).\n";
  else
    o << "\nbaseline: `" << s["baseline"].value("dir", "") << "` (" << fmt(s["baseline"]["tokens_per_s"])
      << " tokens/s, world " << fmt(s["baseline"]["world_size"]) << ").\n";
  return o.str();
}

}  // namespace hpcinfer
