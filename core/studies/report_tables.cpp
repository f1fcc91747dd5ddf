// runs, scaling, sensitivity and ab tables (correctness: correctness_table.cpp). Formulas: report_tables.hpp.
#include "core/studies/report_tables.hpp"

#include "core/eval/sample_stats.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>

namespace hpcinfer::studies {
namespace {

std::vector<double> tps_of(const Point& p) {
  std::vector<double> v;
  for (const auto* r : p.runs) v.push_back(r->tokens_per_s());
  return v;
}

// The raw files of a point's runs. Repeats of one point differ only in their run ids (label_r0, label_r1, ...): then
// one pattern names them all, "DIR/label_r{0,1,2}/summary.json"; otherwise the list, "; "-separated.
std::string sources_of(const Point& p) {
  std::string joined, pattern, repeats;
  bool same = true;
  for (const auto* r : p.runs) {
    joined += (joined.empty() ? "" : "; ") + r->source;
    const std::string suffix = "_r" + std::to_string(r->repeat);
    std::string one = r->source;
    for (size_t at; (at = one.find(r->run_id)) != std::string::npos && r->run_id == r->label + suffix;)
      one.replace(at, r->run_id.size(), r->label + "_r{}");
    if (one == r->source) same = false;  // no run id to fold
    if (pattern.empty()) pattern = one;
    same = same && one == pattern;
    repeats += (repeats.empty() ? "" : ",") + std::to_string(r->repeat);
  }
  if (!same || p.runs.size() < 2) return joined;
  for (size_t at; (at = pattern.find("_r{}")) != std::string::npos;) pattern.replace(at, 4, "_r{" + repeats + "}");
  return pattern;
}

std::string value_of(const RunData& r, const std::string& key) {
  const auto it = r.config.find(key);
  return it == r.config.end() ? "" : it->second;
}

std::string layout_of(const RunData& r) {
  if (r.world() == 1) return "single";
  if (r.tp == 1) return "pp";
  if (r.pp == 1) return "tp";
  return "tp x pp";
}

const Point* find_label(const std::vector<Point>& pts, const std::string& label) {
  for (const auto& p : pts)
    if (p.label == label) return &p;
  return nullptr;
}

// The world=1 point a scaling row is measured against: the study's baseline when it has world 1, else the world=1
// point that shares the most swept-key values with the row.
const Point* scaling_baseline(const Study& s, const std::vector<Point>& pts, const Point& row) {
  if (const Point* b = find_label(pts, s.baseline_label); b && b->first().world() == 1) return b;
  const Point* best = nullptr;
  int best_shared = -1;
  for (const auto& p : pts) {
    if (p.first().world() != 1) continue;
    int shared = 0;
    for (const auto& k : s.swept_keys) shared += value_of(p.first(), k) == value_of(row.first(), k) ? 1 : 0;
    if (shared > best_shared) best = &p, best_shared = shared;
  }
  return best;
}

bool is_number(const std::string& v) {
  char* end = nullptr;
  std::strtod(v.c_str(), &end);
  return !v.empty() && end == v.c_str() + v.size();
}

}  // namespace

MeanStd mean_std(const std::vector<double>& v) {
  if (v.empty()) return {0, NAN, NAN, NAN, NAN};
  const eval::SampleStats s = eval::summarize(v);
  return {s.n, s.mean, s.stddev, s.min, s.max};
}

Table runs_table(const std::vector<Study>& studies) {
  Table t{"runs", "Runs (raw numbers of every run)",
          {"study", "run_id", "point", "repeat", "world", "tp", "pp", "generated_tokens", "wall_s", "tokens_per_s",
           "idle_share", "source"},
          {},
          {"generated_tokens and wall_s: from the file in `source` (summary.json: generated_tokens, wall_s; "
           "otherwise completion_tokens summed over completions.jsonl and the max of engine_wall_s over "
           "metrics/rank_<r>.json); tokens_per_s = generated_tokens / wall_s.",
           "idle_share = sum of idle_recv_wait_s / sum of engine_wall_s over the ranks (time a rank waited for its "
           "input: the pipeline bubble)."}};
  for (const auto& s : studies)
    for (const auto& r : s.runs)
      t.add({s.name, r.run_id, r.label, std::to_string(r.repeat), std::to_string(r.world()), std::to_string(r.tp),
             std::to_string(r.pp), num_csv(r.generated_tokens), num_csv(r.wall_s), num_csv(r.tokens_per_s()),
             num_csv(r.idle_share), r.source});
  return t;
}

Table scaling_table(const std::vector<Study>& studies) {
  Table t{"scaling", "Scaling: speedup and parallel efficiency against world size",
          {"study", "kind", "series", "point", "world", "tp", "pp", "runs", "tokens_per_s", "tokens_per_s_std",
           "wall_s", "baseline", "speedup", "efficiency", "source"},
          {},
          {"tokens_per_s and wall_s: mean over the point's runs (runs table; raw files in `source`); "
           "tokens_per_s_std: sample standard deviation over them.",
           "speedup = tokens_per_s / tokens_per_s of `baseline` (a world=1 point of the same study); "
           "efficiency = speedup / (world / baseline world).",
           "strong_scaling (fixed work): speedup = T1 / TN. weak_scaling (work grows with the world size): speedup is "
           "the scaled speedup (throughput ratio); efficiency 1 = the time stayed constant while the work grew "
           "world-fold."}};
  for (const auto& s : studies) {
    if (s.kind != "strong_scaling" && s.kind != "weak_scaling") continue;
    const auto pts = points_of(s);
    for (const auto& p : pts) {
      const MeanStd m = mean_std(tps_of(p));
      std::vector<double> walls;
      for (const auto* r : p.runs) walls.push_back(r->wall_s);
      const Point* b = scaling_baseline(s, pts, p);
      double speedup = NAN, eff = NAN;
      if (b) {
        const double base = mean_std(tps_of(*b)).mean;
        speedup = m.mean / base;
        eff = speedup / (double(p.first().world()) / double(b->first().world()));
      }
      t.add({s.name, s.kind, layout_of(p.first()), p.label, std::to_string(p.first().world()),
             std::to_string(p.first().tp), std::to_string(p.first().pp), std::to_string(m.n), num_csv(m.mean),
             num_csv(m.std), num_csv(mean_std(walls).mean), b ? b->label : "(no world=1 point)", num_csv(speedup),
             num_csv(eff), sources_of(p)});
    }
  }
  return t;
}

Table sensitivity_table(const std::vector<Study>& studies) {
  Table t{"sensitivity", "Sensitivity: tokens/s against each swept parameter",
          {"study", "key", "value", "series", "point", "runs", "tokens_per_s", "tokens_per_s_std", "vs_base_pct",
           "base_point", "source"},
          {},
          {"value: the key's value in the run's config.yaml (resolved, so the base point shows the base config's "
           "value). series: the other swept keys, held fixed along the curve: \"others as B\" when they have the "
           "values of the baseline point B, else those that differ from B.",
           "tokens_per_s: mean over the point's runs (runs table; raw files in `source`); vs_base_pct = 100 x "
           "(tokens_per_s / tokens_per_s of base_point - 1), base_point = the sweep's baseline point when it is on "
           "the curve, else the curve's first point."}};
  for (const auto& s : studies) {
    if (s.kind != "sensitivity" && s.kind != "grid") continue;
    const auto pts = points_of(s);
    if (pts.empty()) continue;
    const Point* baseline = find_label(pts, s.baseline_label);
    if (!baseline) baseline = &pts.front();
    for (const auto& key : s.swept_keys) {
      if (key == "plugins.strategy") continue;  // follows world.tp, not a knob of its own
      // Series: the values of the other swept keys, written as their differences from the baseline point.
      std::map<std::string, std::vector<const Point*>> series;
      std::vector<std::string> order;
      for (const auto& p : pts) {
        std::string others;
        for (const auto& k : s.swept_keys)
          if (k != key && k != "plugins.strategy" && value_of(p.first(), k) != value_of(baseline->first(), k))
            others += (others.empty() ? "" : ", ") + k + "=" + value_of(p.first(), k);
        if (others.empty()) others = "others as " + baseline->label;
        if (!series.count(others)) order.push_back(others);
        series[others].push_back(&p);
      }
      for (const auto& name : order) {
        auto& curve = series[name];
        std::set<std::string> values;
        for (const auto* p : curve) values.insert(value_of(p->first(), key));
        if (values.size() < 2) continue;  // this key does not move along this series
        const Point* base = curve.front();
        for (const auto* p : curve)
          if (p->label == s.baseline_label) base = p;
        bool numeric = true;
        for (const auto& v : values) numeric = numeric && is_number(v);
        if (numeric)
          std::stable_sort(curve.begin(), curve.end(), [&](const Point* a, const Point* b) {
            return std::strtod(value_of(a->first(), key).c_str(), nullptr) <
                   std::strtod(value_of(b->first(), key).c_str(), nullptr);
          });
        const double base_tps = mean_std(tps_of(*base)).mean;
        for (const auto* p : curve) {
          const MeanStd m = mean_std(tps_of(*p));
          t.add({s.name, key, value_of(p->first(), key), name, p->label, std::to_string(m.n),
                 num_csv(m.mean), num_csv(m.std), num_csv(100.0 * (m.mean / base_tps - 1.0)), base->label,
                 sources_of(*p)});
        }
      }
    }
  }
  return t;
}

Table ab_table(const std::vector<Study>& studies) {
  Table t{"ab", "A/B: each change against the baseline",
          {"study", "baseline", "change", "n_a", "tokens_per_s_a", "std_a", "min_a", "max_a", "n_b", "tokens_per_s_b",
           "std_b", "min_b", "max_b", "delta_pct", "delta_se_pct", "verdict", "source"},
          {},
          {"a = the baseline point, b = the change; tokens_per_s: mean over repeats, std: sample standard deviation, "
           "min/max over the repeats (runs table; raw files in `source`, baseline's first).",
           "delta_pct = 100 x (tokens_per_s_b / tokens_per_s_a - 1); delta_se_pct = 100 x sqrt(std_a^2/n_a + "
           "std_b^2/n_b) / tokens_per_s_a (standard error of the difference of the means, Welch).",
           "verdict: faster/slower when |delta| > 2 standard errors, else within noise; one run per side has no "
           "spread and gets no verdict."}};
  for (const auto& s : studies) {
    if (s.kind != "ab") continue;
    const auto pts = points_of(s);
    if (pts.empty()) continue;
    const Point* a = find_label(pts, s.baseline_label);
    if (!a) a = &pts.front();
    const MeanStd ma = mean_std(tps_of(*a));
    for (const auto& b : pts) {
      if (&b == a) continue;
      const MeanStd mb = mean_std(tps_of(b));
      const double delta = 100.0 * (mb.mean / ma.mean - 1.0);
      const double se = 100.0 * std::sqrt(ma.std * ma.std / ma.n + mb.std * mb.std / mb.n) / ma.mean;
      std::string verdict = "one run per side: no spread";
      if (ma.n >= 2 && mb.n >= 2)
        verdict = std::abs(delta) > 2 * se ? (delta > 0 ? "faster" : "slower") : "within noise (|delta| <= 2 SE)";
      t.add({s.name, a->label, b.label, std::to_string(ma.n), num_csv(ma.mean), num_csv(ma.std), num_csv(ma.min),
             num_csv(ma.max), std::to_string(mb.n), num_csv(mb.mean), num_csv(mb.std), num_csv(mb.min),
             num_csv(mb.max), num_csv(delta), num_csv(se), verdict, sources_of(*a) + "; " + sources_of(b)});
    }
  }
  return t;
}

}  // namespace hpcinfer::studies
