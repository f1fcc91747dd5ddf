// A study: the runs of one sweep (a directory with sweep.json), or loose run directories grouped together.
//
// `hpcinfer report DIR...` takes, for each DIR:
//   - DIR/sweep.json (an `hpcinfer sweep` experiment directory): one study with the sweep's kind, baseline and swept
//     keys; its points' run directories are the runs (points not finished are listed as skipped);
//   - DIR/config.yaml (one run): a loose run; all loose runs on the command line form one study, "runs";
//   - otherwise every subdirectory of DIR with a config.yaml: one study named after DIR.
// Without an index the swept keys are the config keys that differ between the runs (threads, outputs.* and
// world.rendezvous never count), and the kind is guessed: strong_scaling when world.tp or world.pp differ, ab for
// one key with two values, else sensitivity.
#pragma once

#include <string>
#include <vector>

#include "core/studies/run_data.hpp"

namespace hpcinfer::studies {

struct Study {
  std::string name;
  std::string kind;             // strong_scaling | weak_scaling | sensitivity | ab | grid
  std::string source;           // DIR/sweep.json, or the directories the runs came from
  bool indexed = false;         // from a sweep index (kind and swept keys as the sweep said)
  std::string baseline_label;   // "" = the first point
  std::vector<std::string> swept_keys;
  std::vector<RunData> runs;    // readable runs, in sweep order
  std::vector<std::string> skipped;  // "RUN_DIR: why" for runs that could not be used
};

std::vector<Study> collect_studies(const std::vector<std::string>& dirs);

// The points of a study: labels in first-seen order, each with its runs (repeats).
struct Point {
  std::string label;
  std::vector<const RunData*> runs;
  const RunData& first() const { return *runs.front(); }
};
std::vector<Point> points_of(const Study& s);

}  // namespace hpcinfer::studies
