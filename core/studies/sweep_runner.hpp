// Runs the points of a sweep: locally, one `hpcinfer launch -n WORLD BASE --set ...` after another, or under Slurm,
// one `sbatch slurm/submit.sbatch BASE --set ...` per point. Finished points (sweep_index.hpp) are never redone;
// a point whose directory exists but is not finished is cleared and run again. Progress lines go to stderr.
#pragma once

#include <string>

#include "core/studies/sweep_spec.hpp"

namespace hpcinfer::studies {

struct SweepOptions {
  bool slurm = false;       // submit one job per point instead of running locally
  bool dry_run = false;     // list the points and their commands; run and write nothing
  bool wait = false;        // --slurm: wait until the submitted jobs have left the queue, then check them
  double poll_s = 2.0;      // --wait: seconds between squeue calls
  std::string self_exe;     // the hpcinfer binary that runs the points
  std::string submit_script = "slurm/submit.sbatch";
};

// Returns the exit code: 0 when every point is finished (or, with --slurm and no --wait, submitted or queued),
// 1 when a point failed.
int run_sweep(const SweepSpec& spec, const SweepOptions& opt);

}  // namespace hpcinfer::studies
