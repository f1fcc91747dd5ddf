// The sweep index: <output_root>/<experiment>/sweep.json, one entry per point (run id, overrides, world, status),
// rewritten after every point. `hpcinfer report` reads it for the sweep's kind, baseline and swept keys.
//
// A point is finished when its results directory holds metrics/rank_<r>.json for every rank r < tp x pp (each a
// JSON object) and completions.jsonl with as many complete lines as those metrics report requests. That is what
// resume trusts: the index's own status is a record, never the reason to skip a point.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "core/studies/sweep_spec.hpp"

namespace hpcinfer::studies {

struct PointStatus {
  std::string state = "pending";  // pending | running | done | failed | submitted | queued (under Slurm)
  int exit_code = -1;
  double seconds = 0;             // wall time of the local run
  std::string job_id;             // Slurm job id (--slurm)
  std::string finished_at;        // ISO time the state was last set
  std::string note;               // why it is not finished, or what was done
};

struct FinishCheck {
  bool finished = false;
  std::string why;  // when not finished: the first thing missing
};
FinishCheck point_finished(const std::string& run_dir, int world);

nlohmann::json index_json(const SweepSpec& spec, const std::map<std::string, PointStatus>& status);
// Writes atomically (a temporary file, then rename).
void write_index(const std::string& file, const nlohmann::json& index);
// The statuses of a previous index (empty when there is none or it does not parse).
std::map<std::string, PointStatus> read_index_status(const std::string& file);

std::string now_iso();

}  // namespace hpcinfer::studies
