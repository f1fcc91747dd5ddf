// hpcinfer compare RUN_A RUN_B [--json] [--require-match] [--out report.md]: per-prompt agreement of two runs
// (exact token match, first divergence, top-K KL where both kept logprobs); see core/results/compare_runs.hpp.
// Exit 0 when it ran, match or not; 1 with --require-match and any difference; 2 for a RUN that is not a results
// directory or completions file.
#include <fstream>
#include <stdexcept>

#include "core/cli/cli_util.hpp"
#include "core/results/compare_runs.hpp"

namespace hpcinfer::cli {

int cmd_compare(const Args& args) {
  CLI::App app{"Compare the completions of two runs prompt by prompt: exact token match, first divergence position, "
               "mean KL (top-K approximation) where both runs kept logprobs (outputs.logprobs: K)",
               "hpcinfer compare"};
  std::string run_a, run_b, out;
  bool as_json = false, require_match = false;
  app.add_option("run_a", run_a, "reference run: results directory or completions.jsonl")->required();
  app.add_option("run_b", run_b, "run to check: results directory or completions.jsonl")->required();
  app.add_flag("--json", as_json, "print one JSON object (per prompt and summary) instead of the table");
  app.add_flag("--require-match", require_match, "exit 1 when any prompt differs or is missing from a run");
  app.add_option("--out", out, "also write a Markdown correctness report to this file");
  if (auto rc = parse_args(app, args)) return *rc;
  RunCompletions a, b;
  try {
    a = read_run_completions(run_a);
    b = read_run_completions(run_b);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "hpcinfer compare: %s\n", e.what());
    return 2;
  }
  const Comparison c = compare_runs(a, b);
  if (as_json) std::printf("%s\n", comparison_json(c).dump(2).c_str());
  else std::printf("%s", comparison_text(c).c_str());
  if (!out.empty()) {
    std::ofstream f(out);
    f << comparison_markdown(c);
    if (!f) throw std::runtime_error(out + ": cannot write the report");
    std::fprintf(stderr, "hpcinfer compare: report written to %s\n", out.c_str());
  }
  return require_match && c.mismatches > 0 ? 1 : 0;
}

}  // namespace hpcinfer::cli
