// summary.json, metrics.csv and run_summary.md: every number computed from raw.json alone (summarize_raw), so each
// can be traced to the raw fields it came from; summary["sources"] names them, key by key, and run_summary.md
// repeats that next to each value.
//
// Conventions: wall_s is the engine time (common start after the world barrier to the last rank's end, the max of
// ranks[].engine_wall_s); per-rank quantities are given as {sum, mean, max} over ranks (CPU utilisation, a ratio, as
// {min, mean, max}); TTFT, TPOT and latency as describe() statistics (stats.hpp) over requests, TPOT only over
// requests with at least two generated tokens (it is undefined for one). Parallel efficiency needs a baseline run (outputs.baseline, its raw.json): speedup =
// tokens_per_s / baseline tokens_per_s, parallel_efficiency = speedup / (world_size / baseline world_size); both are
// null without one. GPU memory is null: the CPU engine allocates none.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace hpcinfer {

// baseline_raw: the baseline run's raw.json, or null; baseline_dir names it in the summary.
nlohmann::json summarize_raw(const nlohmann::json& raw, const nlohmann::json& baseline_raw = nullptr,
                             const std::string& baseline_dir = "");

// One header line and one value line: the summary's numbers flattened to dotted keys (ttft_s.p90, compute_s.sum);
// null is an empty cell. Rows of several runs can be concatenated under one header.
std::string summary_csv(const nlohmann::json& summary);

// A short table for people: value and the raw.json source of each number.
std::string summary_markdown(const nlohmann::json& summary);

}  // namespace hpcinfer
