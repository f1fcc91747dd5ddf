// The correctness table: every run's token ids against a world=1 run of the same study (report_tables.hpp).
#include <algorithm>
#include <limits>

#include "core/studies/report_tables.hpp"

namespace hpcinfer::studies {
namespace {

// Keys that choose the layout or the schedule, not the computation: runs that differ only in these must produce
// the same tokens (greedy), so they are not held against a reference.
bool layout_key(const std::string& k) {
  for (const char* p : {"world.", "batching.", "outputs."})
    if (k.rfind(p, 0) == 0) return true;
  return k == "threads" || k == "plugins.comm" || k == "plugins.strategy" || k == "inputs.prompts" ||
         k == "plugin_path";
}

std::vector<std::string> output_keys_differing(const RunData& a, const RunData& b) {
  std::vector<std::string> out;
  for (const auto& [k, v] : a.config) {
    if (layout_key(k)) continue;
    const auto it = b.config.find(k);
    if (it == b.config.end() || it->second != v) out.push_back(k + "=" + v + " (ref " + (it == b.config.end() ? "?" : it->second) + ")");
  }
  return out;
}

const RunData* reference_for(const Study& s, const RunData& run) {
  const RunData* best = nullptr;
  size_t best_diff = std::numeric_limits<size_t>::max();
  for (const auto& r : s.runs) {
    if (&r == &run || r.world() != 1) continue;
    const size_t d = output_keys_differing(run, r).size();
    if (d < best_diff) best = &r, best_diff = d;
  }
  return best;
}

}  // namespace

Table correctness_table(const std::vector<Study>& studies) {
  Table t{"correctness", "Correctness: exact token match against the world=1 run",
          {"study", "run_id", "world", "tp", "pp", "reference", "compared", "exact", "differ", "first_divergence",
           "not_in_reference", "reference_differs_in", "source"},
          {},
          {"compared: requests with the same id and prompt in both completions.jsonl files (`source`: run, then "
           "reference); exact: identical token_ids; first_divergence: the smallest token position where any compared "
           "request differs (empty when all match).",
           "reference: the world=1 run of the same study whose output-affecting config keys differ least; layout and "
           "schedule keys (world.*, batching.*, plugins.comm, plugins.strategy, inputs.prompts, threads, outputs.*) "
           "are not compared; reference_differs_in names the other keys that differ (then a mismatch is expected, "
           "e.g. another weight format)."}};
  for (const auto& s : studies)
    for (const auto& run : s.runs) {
      const RunData* ref = reference_for(s, run);
      if (!ref) continue;
      int compared = 0, exact = 0, missing = 0;
      size_t first = std::numeric_limits<size_t>::max();
      for (const auto& [id, c] : run.completions) {
        const auto it = ref->completions.find(id);
        if (it == ref->completions.end() || it->second.prompt != c.prompt) {
          ++missing;
          continue;
        }
        ++compared;
        const auto& a = c.token_ids;
        const auto& b = it->second.token_ids;
        if (a == b) {
          ++exact;
          continue;
        }
        size_t i = 0;
        while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
        first = std::min(first, i);
      }
      std::string differs;
      for (const auto& d : output_keys_differing(run, *ref)) differs += (differs.empty() ? "" : "; ") + d;
      t.add({s.name, run.run_id, std::to_string(run.world()), std::to_string(run.tp), std::to_string(run.pp),
             ref->run_id, std::to_string(compared), std::to_string(exact), std::to_string(compared - exact),
             first == std::numeric_limits<size_t>::max() ? "" : std::to_string(first), std::to_string(missing),
             differs, run.completions_file + "; " + ref->completions_file});
    }
  return t;
}

}  // namespace hpcinfer::studies
