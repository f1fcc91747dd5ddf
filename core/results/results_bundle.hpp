// The results bundle of a run, written by rank 0 once every rank has finished: env.json, raw.json, summary.json,
// metrics.csv, run_summary.md and trace.json, beside config.yaml, completions.jsonl and metrics/rank_<r>.json.
//
// How rank 0 gets the other ranks' data: through the communicator, not the filesystem. After the engine's closing
// barrier each rank sends rank 0 one JSON report (gather_reports: a length, then the bytes, tag kTagBundle, with the
// run's world.timeout_s like every other call): its metrics, its engine spans, the per-request timings when it is the
// rank that wrote the completions, and its host facts when it is the first rank on its host. So the bundle is
// complete on rank 0's node even without a shared filesystem (multi-host runs with a tcp:// rendezvous), and
// rank 0 never polls for files of other nodes.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/config/experiment_config.hpp"
#include "core/rendezvous/launch_env.hpp"
#include "core/runtime/requests.hpp"
#include "core/runtime/span_log.hpp"
#include "hpcinfer/communicator.hpp"

namespace hpcinfer {

constexpr uint32_t kTagBundle = 3;  // the pipeline uses 1 (forward) and 2 (backward)

// One request's line of raw.json.
nlohmann::json request_record(const Completion& c);

// This rank's report: metrics (what metrics/rank_<r>.json holds), spans, request records (null unless this rank
// wrote the completions), host facts (null unless with_host).
nlohmann::json rank_report(const nlohmann::json& metrics, const SpanLog& spans, const nlohmann::json& requests,
                           bool with_host);

// Rank 0 returns every rank's report, in rank order; other ranks send theirs and return an empty vector.
// comm may be null for a world of one.
std::vector<nlohmann::json> gather_reports(Communicator* comm, int rank, int size, const nlohmann::json& mine);

// raw.json from the reports: {"format", "run", "requests" (by input order), "ranks" (metrics by rank)}.
nlohmann::json raw_from_reports(const std::vector<nlohmann::json>& reports, const ExperimentConfig& cfg,
                                const LaunchEnv& env);
// env.json: hosts (one entry per node: host_info.hpp plus "node", the ranks' host name, which under Slurm is the
// node name), ranks (rank -> node), build (build_info.hpp), launcher, Slurm variables.
nlohmann::json env_from_reports(const std::vector<nlohmann::json>& reports, const LaunchEnv& env);

// Writes the six files into dir. A baseline (outputs.baseline) whose raw.json cannot be read is reported in the
// returned warnings and left out (speedup and efficiency stay null).
std::vector<std::string> write_results_bundle(const std::string& dir, const ExperimentConfig& cfg,
                                              const LaunchEnv& env, const std::vector<nlohmann::json>& reports);

}  // namespace hpcinfer
