#include "core/results/results_bundle.hpp"

#include "core/results/output_dir.hpp"

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>

#include "core/results/build_info.hpp"
#include "core/results/host_info.hpp"
#include "core/results/summary.hpp"
#include "core/results/trace_json.hpp"
#include "core/runtime/json_text.hpp"

namespace hpcinfer {

using nlohmann::json;

json request_record(const Completion& c) {
  return {{"id", c.id},
          {"index", c.index},
          {"prompt_tokens", c.prompt_tokens},
          {"generated_tokens", c.token_ids.size()},
          {"finish_reason", c.finish_reason},
          {"ttft_s", c.ttft_s},
          {"latency_s", c.latency_s},
          {"tpot_s", c.tpot_s}};
}

json rank_report(const json& metrics, const SpanLog& spans, const json& requests, bool with_host) {
  json rows = json::array();
  for (const Span& s : spans.spans()) rows.push_back({s.name, s.start, s.end, s.group, s.tokens, s.allreduce});
  return {{"metrics", metrics},
          {"spans", std::move(rows)},
          {"spans_dropped", spans.dropped()},
          {"requests", requests},
          {"host_info", with_host ? host_info_json() : json(nullptr)}};
}

std::vector<json> gather_reports(Communicator* comm, int rank, int size, const json& mine) {
  if (size <= 1 || !comm) return {mine};
  if (rank != 0) {
    const std::string bytes = json_text(mine);
    const uint64_t n = bytes.size();
    comm->send(&n, sizeof n, 0, kTagBundle);
    comm->send(bytes.data(), bytes.size(), 0, kTagBundle);
    comm->barrier();  // the sends are buffered: wait until rank 0 has them before this rank may exit
    return {};
  }
  std::vector<json> out{mine};
  for (int r = 1; r < size; ++r) {
    uint64_t n = 0;
    comm->recv(&n, sizeof n, r, kTagBundle);
    std::string bytes(static_cast<size_t>(n), '\0');
    comm->recv(bytes.data(), bytes.size(), r, kTagBundle);
    out.push_back(json::parse(bytes));
  }
  comm->barrier();
  return out;
}

json raw_from_reports(const std::vector<json>& reports, const ExperimentConfig& cfg, const LaunchEnv& env) {
  json requests = json::array(), ranks = json::array();
  for (const json& rep : reports) {
    ranks.push_back(rep.at("metrics"));
    if (rep.contains("requests") && rep["requests"].is_array())
      for (const json& r : rep["requests"]) requests.push_back(r);
  }
  std::sort(requests.begin(), requests.end(),
            [](const json& a, const json& b) { return a.at("index").get<int>() < b.at("index").get<int>(); });
  std::sort(ranks.begin(), ranks.end(),
            [](const json& a, const json& b) { return a.at("rank").get<int>() < b.at("rank").get<int>(); });
  const json run = {{"world_size", env.size},
                 {"tp", cfg.world.tp},
                 {"pp", cfg.world.pp},
                 {"comm", env.size > 1 ? cfg.plugins.comm : "none"},
                 {"weights", reports.empty() ? cfg.plugins.weights
                                             : reports[0].at("metrics").value("weights_plugin", cfg.plugins.weights)},
                 {"strategy", cfg.plugins.strategy},
                 {"model", cfg.model.path},
                 {"prompts", cfg.inputs.prompts},
                 {"batch_size", cfg.batching.batch_size},
                 {"micro_batches", cfg.batching.micro_batches},
                 {"max_new_tokens", cfg.generation.max_new_tokens},
                 {"temperature", cfg.generation.temperature},
                 {"seed", cfg.generation.seed},
                 {"launcher", env.source},
                 {"job_id", env.job_id},
                 {"span_cap", SpanLog::kDefaultCap}};
  return {{"format", "hpcinfer-raw-1"},
          {"units", "seconds (times since the common engine start for ttft_s and latency_s), bytes"},
          {"run", run},
          {"requests", requests},
          {"ranks", ranks}};
}

json env_from_reports(const std::vector<json>& reports, const LaunchEnv& env) {
  json hosts = json::array(), ranks = json::array();
  std::set<std::string> seen;
  for (const json& rep : reports) {
    const json& m = rep.at("metrics");
    ranks.push_back({{"rank", m.at("rank")}, {"host", m.value("host", "")}, {"local_rank", m.value("local_rank", -1)}});
    // One entry per node, by the rank's node name (under Slurm SLURMD_NODENAME: emulated nodes share a host name).
    json h = rep.value("host_info", json(nullptr));
    if (h.is_object() && seen.insert(m.value("host", "")).second) {
      h["node"] = m.value("host", "");
      hosts.push_back(h);
    }
  }
  json slurm = json::object();
  for (const char* v : {"SLURM_JOB_ID", "SLURM_JOB_NAME", "SLURM_JOB_NODELIST", "SLURM_JOB_PARTITION", "SLURM_NTASKS",
                        "SLURM_NNODES", "SLURM_CPUS_PER_TASK", "SLURM_CLUSTER_NAME"})
    if (const char* val = std::getenv(v)) slurm[v] = val;
  json vars = json::object();
  for (const char* v : {"OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "HPCINFER_PLUGIN_PATH"})
    if (const char* val = std::getenv(v)) vars[v] = val;
  char ts[32];
  std::time_t t = std::time(nullptr);
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return {{"format", "hpcinfer-env-1"},
          {"collected_at", ts},
          {"hosts", hosts},
          {"ranks", ranks},
          {"build", build_info_json()},
          {"launcher", {{"source", env.source}, {"job_id", env.job_id}, {"world_size", env.size}}},
          {"slurm", slurm.empty() ? json(nullptr) : slurm},
          {"environment", vars}};
}

std::vector<std::string> write_results_bundle(const std::string& dir, const ExperimentConfig& cfg,
                                              const LaunchEnv& env, const std::vector<json>& reports) {
  namespace fs = std::filesystem;
  std::vector<std::string> warnings;
  const fs::path d(dir);
  auto write = [&](const char* name, const std::string& text) { write_file_atomic(d / name, text); };
  const json raw = raw_from_reports(reports, cfg, env);
  json baseline = nullptr;
  if (!cfg.outputs.baseline.empty()) {
    const fs::path b = fs::path(cfg.outputs.baseline) / "raw.json";
    try {
      std::ifstream in(b);
      if (!in) throw std::runtime_error("cannot open it");
      baseline = json::parse(in);
    } catch (const std::exception& e) {
      warnings.push_back("outputs.baseline: " + b.string() + ": " + e.what() +
                         "; speedup and parallel_efficiency left null");
      baseline = nullptr;
    }
  }
  const json summary = summarize_raw(raw, baseline, cfg.outputs.baseline);
  write("env.json", env_from_reports(reports, env).dump(2) + "\n");
  write("raw.json", raw.dump(2) + "\n");
  write("summary.json", summary.dump(2) + "\n");
  write("metrics.csv", summary_csv(summary));
  write("run_summary.md", summary_markdown(summary));
  write("trace.json", chrome_trace(reports).dump() + "\n");
  return warnings;
}

}  // namespace hpcinfer
