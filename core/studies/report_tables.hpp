// The tables of `hpcinfer report`, computed from the runs' raw numbers (run_data.hpp). Each table has one row per
// point (or run) of every study that it applies to, a `source` column naming the raw files, and footnotes with the
// formulas. Throughput everywhere: tokens/s = generated tokens / wall seconds of one run (run_data.hpp); a point's
// tokens/s is the mean over its repeats, std the sample standard deviation (n - 1).
//
//   runs         every run: its raw numbers (the table the others can be checked against)
//   scaling      strong_scaling / weak_scaling studies: speedup = tokens/s of the point / tokens/s of its world=1
//                baseline point; parallel efficiency = speedup / (world / baseline world). For strong scaling (same
//                work) that is T1 / TN; for weak scaling (work grows with world) it is the scaled speedup, and
//                efficiency 1 means the time stayed constant while the work grew by the world size.
//   sensitivity  sensitivity / grid studies: tokens/s against the value of each swept key, the other swept keys held
//                (one series per combination of the others), and the change against the series' base point.
//   ab           ab studies: every point against the baseline point: delta % of the mean tokens/s, with the standard
//                error of the difference of the means (Welch) and the min..max of each side over its repeats.
//   correctness  every run against a world=1 run of the same study: exact token-id match per request (same id, same
//                prompt), first diverging position; the reference is the world=1 run whose output-affecting keys
//                differ least (layout keys world.*, batching.*, plugins.comm/strategy, inputs.prompts, threads,
//                outputs.* must not change tokens and are not compared); keys that do differ are named.
#pragma once

#include <vector>

#include "core/studies/study.hpp"
#include "core/studies/table.hpp"

namespace hpcinfer::studies {

Table runs_table(const std::vector<Study>& studies);
Table scaling_table(const std::vector<Study>& studies);
Table sensitivity_table(const std::vector<Study>& studies);
Table ab_table(const std::vector<Study>& studies);
Table correctness_table(const std::vector<Study>& studies);

struct MeanStd {
  int n = 0;
  double mean = 0, std = 0, min = 0, max = 0;
};
MeanStd mean_std(const std::vector<double>& v);  // std with n - 1; 0 for n = 1

}  // namespace hpcinfer::studies
