// A sweep: one base experiment config and the points to run it at (hpcinfer sweep SWEEP.yaml).
//
// SWEEP.yaml (keys are the experiment config's dotted keys, values YAML scalars or flow lists):
//   experiment: strong_scaling          # results go to <output_root>/<experiment>/<run_id>/ (default: file name)
//   kind: strong_scaling                # strong_scaling | weak_scaling | sensitivity | ab | grid (what `report` draws)
//   base: configs/local_single.yaml     # the base experiment config (paths relative to the working directory)
//   output_root: results                # default results
//   repeats: 3                          # runs per point (trials), default 1
//   set: {generation.max_new_tokens: 32}         # overrides applied to every point
//   points: [{world.pp: 2}, {world.tp: 2, plugins.strategy: tp_pp}]   # explicit points
//   zip: {world.pp: [1, 2], inputs.prompts: [a.jsonl, b.jsonl]}      # lists of one length that change together
//   grid: {batching.micro_batches: [1, 2, 4]}    # every combination
//   vary: {plugins.weights: [bf16, int8]}        # one key at a time, the others at the base's values; the base
//                                                # itself (no override) is a point too
//   baseline: {batching.micro_batches: 1}        # ab: the baseline point (default: the first point)
//   slurm: {sbatch_args: [-t, "00:10:00"]}       # extra sbatch flags for --slurm
// Points = points (or one empty point) x zip rows x grid combinations x (base + vary entries), duplicates dropped.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace hpcinfer::studies {

using Overrides = std::vector<std::pair<std::string, std::string>>;  // ordered key -> value text (as for --set)

struct SweepPoint {
  std::string label;     // the point without its repeat: "pp-2_micro_batches-2" ("base" for no override)
  std::string run_id;    // label + "_r<repeat>": unique in the sweep, stable across runs of the same SWEEP.yaml
  int repeat = 0;
  Overrides overrides;   // this point's own overrides (not the sweep's `set`)
  int tp = 1, pp = 1;    // resolved from the base config + set + overrides
  int world() const { return tp * pp; }
  std::string comm;      // resolved plugins.comm (mpi points run under mpirun, not hpcinfer launch)
  int threads = 0;       // resolved threads (0 = a share of the cores)
  int busy_ranks = 1;    // ranks computing at once: tp x min(pp, micro_batches), as hpcinfer launch counts them
  std::vector<std::string> set_args() const;  // "key=value" for --set, in order
};

struct SweepSpec {
  std::string file;         // SWEEP.yaml as given
  std::string experiment;
  std::string kind = "grid";
  std::string base;
  std::string output_root = "results";
  int repeats = 1;
  Overrides fixed;          // `set:`
  Overrides baseline;       // `baseline:` (empty: the first point)
  std::string baseline_label;            // the label of the baseline point
  std::vector<std::string> swept_keys;   // every key some point overrides, in first-seen order
  std::vector<std::string> sbatch_args;  // slurm.sbatch_args
  std::vector<SweepPoint> points;        // expanded: every point x repeat, in run order (repeat-major)

  std::string experiment_dir() const { return output_root + "/" + experiment; }
  std::string run_dir(const SweepPoint& p) const { return experiment_dir() + "/" + p.run_id; }
  std::vector<std::string> fixed_set_args() const;  // `set:` as "key=value"
};

// Reads and expands SWEEP.yaml; every point is validated against the base config (load_config), so a bad key or
// a tp x pp the model cannot take is reported before anything runs. Throws std::runtime_error naming FILE and key.
SweepSpec load_sweep(const std::string& file);

// The run-id piece of one override: "world.pp"="2" -> "pp-2"; "world.layer_split"="[2,3]" -> "layer_split-2-3";
// a path value keeps its file stem: "inputs.prompts"="configs/prompts/tales16.jsonl" -> "prompts-tales16".
std::string id_piece(const std::string& key, const std::string& value);

}  // namespace hpcinfer::studies
