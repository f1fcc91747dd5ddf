// load_sweep(): SWEEP.yaml -> the expanded list of points. See sweep_spec.hpp for the format.
#include "core/studies/sweep_spec.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <set>

#include "core/config/config_error.hpp"
#include "core/config/load_config.hpp"

namespace hpcinfer::studies {
namespace {

const std::set<std::string> kKinds{"strong_scaling", "weak_scaling", "sensitivity", "ab", "grid"};
const std::set<std::string> kTopKeys{"experiment", "kind",     "base", "output_root", "repeats", "set",
                                     "points",     "zip",      "grid", "vary",        "baseline", "slurm"};

[[noreturn]] void fail(const std::string& file, const YAML::Node& at, const std::string& key, const std::string& msg) {
  const int line = at.IsDefined() ? at.Mark().line + 1 : 0;
  throw ConfigError(file + (line > 0 ? ":" + std::to_string(line) : "") + ": " + key + ": " + msg);
}

// A scalar as written, a flow list as [a,b] (what --set parses back).
std::string value_text(const std::string& file, const std::string& key, const YAML::Node& v) {
  if (v.IsScalar()) return v.Scalar();
  if (v.IsSequence()) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + value_text(file, key, v[i]);
    return s + "]";
  }
  fail(file, v, key, "expected a value (scalar or list)");
}

// A map of dotted key -> one value.
Overrides read_map(const std::string& file, const std::string& where, const YAML::Node& m) {
  if (!m.IsMap()) fail(file, m, where, "expected a map of key: value");
  Overrides out;
  for (const auto& kv : m) {
    const std::string key = kv.first.Scalar();
    out.emplace_back(key, value_text(file, where + "." + key, kv.second));
  }
  return out;
}

// A map of dotted key -> list of values.
std::vector<std::pair<std::string, std::vector<std::string>>> read_lists(const std::string& file,
                                                                         const std::string& where,
                                                                         const YAML::Node& m) {
  if (!m.IsMap()) fail(file, m, where, "expected a map of key: [values]");
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (const auto& kv : m) {
    const std::string key = kv.first.Scalar();
    if (!kv.second.IsSequence() || kv.second.size() == 0)
      fail(file, kv.second, where + "." + key, "expected a non-empty list of values");
    std::vector<std::string> values;
    for (const auto& v : kv.second) values.push_back(value_text(file, where + "." + key, v));
    out.emplace_back(key, values);
  }
  return out;
}

// Every combination of `base` x each entry of `with`.
std::vector<Overrides> cross(const std::vector<Overrides>& base, const std::vector<Overrides>& with) {
  std::vector<Overrides> out;
  for (const auto& b : base)
    for (const auto& w : with) {
      Overrides o = b;
      o.insert(o.end(), w.begin(), w.end());
      out.push_back(o);
    }
  return out;
}

std::string sanitize(const std::string& s) {
  std::string out;
  for (char c : s) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_';
    if (ok)
      out += c;
    else if (!out.empty() && out.back() != '-')
      out += '-';
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out;
}

}  // namespace

std::string id_piece(const std::string& key, const std::string& value) {
  const auto dot = key.rfind('.');
  const std::string name = dot == std::string::npos ? key : key.substr(dot + 1);
  std::string v = value;
  if (v.find('/') != std::string::npos) v = std::filesystem::path(v).stem().string();
  return sanitize(name) + "-" + sanitize(v);
}

std::vector<std::string> SweepPoint::set_args() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : overrides) out.push_back(k + "=" + v);
  return out;
}

std::vector<std::string> SweepSpec::fixed_set_args() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : fixed) out.push_back(k + "=" + v);
  return out;
}

SweepSpec load_sweep(const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const YAML::BadFile&) {
    throw ConfigError(file + ": cannot read the sweep file");
  } catch (const YAML::Exception& e) {
    throw ConfigError(file + ":" + std::to_string(e.mark.line + 1) + ": malformed YAML: " + e.msg);
  }
  if (!root.IsMap()) throw ConfigError(file + ": a sweep file is a YAML map (experiment, base, grid, ...)");
  for (const auto& kv : root)
    if (!kTopKeys.count(kv.first.Scalar()))
      fail(file, kv.first, kv.first.Scalar(),
           "unknown key (known: experiment, kind, base, output_root, repeats, set, points, zip, grid, vary, "
           "baseline, slurm)");

  SweepSpec s;
  s.file = file;
  s.experiment = root["experiment"] ? root["experiment"].Scalar() : std::filesystem::path(file).stem().string();
  if (s.experiment.empty() || sanitize(s.experiment) != s.experiment)
    fail(file, root["experiment"], "experiment", "must be a plain name (letters, digits, . _ -)");
  if (root["kind"]) s.kind = root["kind"].Scalar();
  if (!kKinds.count(s.kind))
    fail(file, root["kind"], "kind", "'" + s.kind + "': use strong_scaling, weak_scaling, sensitivity, ab or grid");
  if (!root["base"]) throw ConfigError(file + ": base: required key is missing (the base experiment config)");
  s.base = root["base"].Scalar();
  if (root["output_root"]) s.output_root = root["output_root"].Scalar();
  if (root["repeats"]) {
    try {
      s.repeats = root["repeats"].as<int>();
    } catch (const YAML::Exception&) {
      fail(file, root["repeats"], "repeats", "expected an integer");
    }
    if (s.repeats < 1 || s.repeats > 1000) fail(file, root["repeats"], "repeats", "must be in [1, 1000]");
  }
  if (root["set"]) s.fixed = read_map(file, "set", root["set"]);
  if (root["baseline"]) s.baseline = read_map(file, "baseline", root["baseline"]);
  if (root["slurm"]) {
    const auto sl = root["slurm"];
    if (!sl.IsMap()) fail(file, sl, "slurm", "expected a map (sbatch_args: [...])");
    for (const auto& kv : sl) {
      if (kv.first.Scalar() != "sbatch_args") fail(file, kv.first, "slurm." + kv.first.Scalar(), "unknown key");
      if (!kv.second.IsSequence()) fail(file, kv.second, "slurm.sbatch_args", "expected a list of flags");
      for (const auto& a : kv.second) s.sbatch_args.push_back(a.Scalar());
    }
  }

  // Expand: points x zip x grid x vary.
  std::vector<Overrides> pts{Overrides{}};
  if (root["points"]) {
    const auto p = root["points"];
    if (!p.IsSequence() || p.size() == 0) fail(file, p, "points", "expected a non-empty list of maps");
    pts.clear();
    for (size_t i = 0; i < p.size(); ++i) pts.push_back(read_map(file, "points[" + std::to_string(i) + "]", p[i]));
  }
  if (root["zip"]) {
    const auto lists = read_lists(file, "zip", root["zip"]);
    const size_t n = lists.front().second.size();
    for (const auto& [k, v] : lists)
      if (v.size() != n)
        fail(file, root["zip"][k], "zip." + k,
             "has " + std::to_string(v.size()) + " values, the first list " + std::to_string(n) +
                 ": zip lists change together and must have one length");
    std::vector<Overrides> rows(n);
    for (const auto& [k, v] : lists)
      for (size_t i = 0; i < n; ++i) rows[i].emplace_back(k, v[i]);
    pts = cross(pts, rows);
  }
  if (root["grid"])
    for (const auto& [k, values] : read_lists(file, "grid", root["grid"])) {
      std::vector<Overrides> one;
      for (const auto& v : values) one.push_back({{k, v}});
      pts = cross(pts, one);
    }
  if (root["vary"]) {
    std::vector<Overrides> one{Overrides{}};  // the base itself
    for (const auto& [k, values] : read_lists(file, "vary", root["vary"]))
      for (const auto& v : values) one.push_back({{k, v}});
    pts = cross(pts, one);
  }

  // Resolve each point against the base config (validates it; duplicates by resolved config are dropped).
  std::vector<std::string> fixed_args = s.fixed_set_args();
  std::set<std::string> seen_configs, seen_labels;
  std::vector<SweepPoint> unique;
  for (const auto& o : pts) {
    SweepPoint p;
    p.overrides = o;
    std::vector<std::string> args = fixed_args;
    for (const auto& a : p.set_args()) args.push_back(a);
    ExperimentConfig cfg;
    try {
      cfg = load_config(s.base, args);
    } catch (const ConfigError& e) {
      std::string where;
      for (const auto& a : p.set_args()) where += (where.empty() ? "" : ", ") + a;
      throw ConfigError(file + ": point {" + where + "}: " + e.what());
    }
    cfg.outputs.dir.clear();
    cfg.key_origins.clear();  // the dump lists --set origins as comments: compare the values only
    if (!seen_configs.insert(dump_config_yaml(cfg)).second) continue;  // same experiment as an earlier point
    p.tp = cfg.world.tp;
    p.pp = cfg.world.pp;
    p.comm = cfg.plugins.comm;
    p.threads = cfg.threads;
    p.busy_ranks = cfg.world.tp * std::min(cfg.world.pp, cfg.batching.micro_batches);
    for (const auto& [k, v] : o) {
      p.label += (p.label.empty() ? "" : "_") + id_piece(k, v);
      if (std::find(s.swept_keys.begin(), s.swept_keys.end(), k) == s.swept_keys.end()) s.swept_keys.push_back(k);
    }
    if (p.label.empty()) p.label = "base";
    const std::string stem = p.label;
    for (int n = 2; !seen_labels.insert(p.label).second; ++n) p.label = stem + "-" + std::to_string(n);
    unique.push_back(p);
  }
  // Repeat-major order (every point once, then every point again): a slow drift of the machine (another job, heat)
  // spreads over all points instead of biasing the points that happen to run last.
  for (int r = 0; r < s.repeats; ++r)
    for (const auto& p : unique) {
      SweepPoint q = p;
      q.repeat = r;
      q.run_id = p.label + "_r" + std::to_string(r);
      s.points.push_back(q);
    }
  // The A/B baseline must be one of the points (default: the first).
  s.baseline_label = unique.empty() ? "" : unique.front().label;
  if (!s.baseline.empty()) {
    s.baseline_label.clear();
    Overrides b = s.baseline;
    std::sort(b.begin(), b.end());
    for (const auto& p : unique) {
      Overrides a = p.overrides;
      std::sort(a.begin(), a.end());
      if (a == b) s.baseline_label = p.label;
    }
    if (s.baseline_label.empty())
      fail(file, root["baseline"], "baseline", "matches none of the points (its overrides must equal one point's)");
  }
  return s;
}

}  // namespace hpcinfer::studies
