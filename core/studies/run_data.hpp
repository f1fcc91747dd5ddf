// One run's numbers as `hpcinfer report` uses them, each with the raw file it came from.
//
// Throughput: generated tokens / wall seconds, wall = the slowest rank's engine time.
//   - With summary.json (the results bundle): its generated_tokens and wall_s (which it derives from raw.json the
//     same way); source "DIR/summary.json".
//   - Otherwise: the sum of completion_tokens in completions.jsonl, and the max of engine_wall_s over
//     metrics/rank_<r>.json; source "DIR/completions.jsonl + DIR/metrics/rank_0..N-1.json".
// Token ids for the correctness table always come from completions.jsonl.
#pragma once

#include <cmath>
#include <map>
#include <string>
#include <vector>

namespace hpcinfer::studies {

struct RunData {
  std::string dir;     // the results directory, as found
  std::string run_id;  // its directory name
  std::string label;   // its sweep point (the run id without _r<repeat>), or the run id outside a sweep
  int repeat = 0;
  std::map<std::string, std::string> config;  // config.yaml flattened: "world.pp" -> "2", "world.layer_split" -> "[2,3]"
  int tp = 1, pp = 1;
  int world() const { return tp * pp; }

  double generated_tokens = NAN;
  double wall_s = NAN;
  double idle_share = NAN;    // sum of idle_recv_wait_s / sum of engine_wall_s over ranks
  std::string source;         // the raw files of the numbers above

  struct Completion {
    std::string prompt;
    std::vector<int> token_ids;
  };
  std::map<std::string, Completion> completions;  // by request id
  std::string completions_file;

  std::string problem;  // non-empty: the run could not be read (what is missing)
  double tokens_per_s() const { return wall_s > 0 ? generated_tokens / wall_s : NAN; }
};

// Reads DIR (config.yaml, completions.jsonl, metrics/rank_*.json or summary.json). Never throws for a broken run:
// the reason goes into `problem`.
RunData load_run(const std::string& dir);

// config.yaml as dotted keys; lists as flow text "[a,b]". Empty map when the file does not parse.
std::map<std::string, std::string> flatten_config(const std::string& config_yaml_file);

}  // namespace hpcinfer::studies
