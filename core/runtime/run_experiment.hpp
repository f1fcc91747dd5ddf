// One rank of an experiment, end to end: prompts in, completions and metrics out.
//
// Results directory (outputs.dir): config.yaml (resolved, rank 0), completions.jsonl (last stage, tp rank 0, one
// line flushed per finished request), metrics/rank_<r>.json (every rank: times, bytes, peak RSS), and the bundle
// written by rank 0 at the end from every rank's report (core/results/results_bundle.hpp): env.json, raw.json,
// summary.json, metrics.csv, run_summary.md, trace.json.
#pragma once

#include "core/config/experiment_config.hpp"
#include "core/rendezvous/launch_env.hpp"
#include "core/runtime/requests.hpp"

namespace hpcinfer {

// Returns the process exit code. Throws on runtime failures (main() prints them and exits 1).
int run_experiment(const ExperimentConfig& cfg, const LaunchEnv& env);

// The configuration's generation settings for the request at `index` (its random stream: generation.seed and the
// index, so every request draws its own numbers and a rerun draws the same).
GenerationParams generation_params(const ExperimentConfig& cfg, int index);

// Peak resident set size of this process so far, bytes.
size_t peak_rss_bytes();

}  // namespace hpcinfer
