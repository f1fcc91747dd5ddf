#include "core/studies/study.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/studies/sweep_index.hpp"

namespace hpcinfer::studies {
namespace {
namespace fs = std::filesystem;

bool ignored_key(const std::string& k) {
  return k == "threads" || k.rfind("outputs.", 0) == 0 || k == "world.rendezvous";
}

// Keys whose values differ between the runs.
std::vector<std::string> differing_keys(const std::vector<RunData>& runs) {
  std::set<std::string> keys;
  for (const auto& r : runs)
    for (const auto& [k, v] : r.config) keys.insert(k);
  std::vector<std::string> out;
  for (const auto& k : keys) {
    if (ignored_key(k)) continue;
    std::set<std::string> values;
    for (const auto& r : runs) values.insert(r.config.count(k) ? r.config.at(k) : "");
    if (values.size() > 1) out.push_back(k);
  }
  return out;
}

std::string guess_kind(const std::vector<RunData>& runs, const std::vector<std::string>& keys) {
  for (const auto& k : keys)
    if (k == "world.tp" || k == "world.pp") return "strong_scaling";
  if (keys.size() == 1) {
    std::set<std::string> values;
    for (const auto& r : runs) values.insert(r.config.count(keys[0]) ? r.config.at(keys[0]) : "");
    if (values.size() == 2) return "ab";
  }
  return "sensitivity";
}

void add_run(Study& s, const std::string& dir, const std::string& label, int repeat) {
  RunData r = load_run(dir);
  if (!r.problem.empty()) {
    s.skipped.push_back(dir + ": " + r.problem);
    return;
  }
  r.label = label;
  r.repeat = repeat;
  s.runs.push_back(std::move(r));
}

Study from_index(const fs::path& dir) {
  const fs::path file = dir / "sweep.json";
  std::ifstream in(file);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.contains("points")) throw std::runtime_error(file.string() + ": not a sweep index");
  Study s;
  s.name = j.value("experiment", dir.filename().string());
  s.kind = j.value("kind", "grid");
  s.source = file.string();
  s.indexed = true;
  s.baseline_label = j.value("baseline", "");
  if (j.contains("swept_keys")) s.swept_keys = j["swept_keys"].get<std::vector<std::string>>();
  for (const auto& p : j["points"]) {
    // The index records dirs relative to where the sweep ran; the run's directory name under DIR is the same.
    const fs::path run_dir = dir / p.value("run_id", "");
    const FinishCheck f = point_finished(run_dir.string(), p.value("world", 1));
    if (!f.finished) {
      s.skipped.push_back(run_dir.string() + ": not finished (" + f.why + ")");
      continue;
    }
    add_run(s, run_dir.string(), p.value("label", p.value("run_id", "")), p.value("repeat", 0));
  }
  return s;
}

}  // namespace

std::vector<Study> collect_studies(const std::vector<std::string>& dirs) {
  std::vector<Study> out;
  Study loose;
  loose.name = "runs";
  for (const auto& d : dirs) {
    const fs::path dir(d);
    if (!fs::is_directory(dir)) throw std::runtime_error(d + ": no such directory");
    if (fs::exists(dir / "sweep.json")) {
      out.push_back(from_index(dir));
    } else if (fs::exists(dir / "config.yaml")) {
      add_run(loose, d, dir.filename().string(), 0);
      loose.source += (loose.source.empty() ? "" : ", ") + d;
    } else {
      Study s;
      s.name = dir.filename().string();
      s.source = d;
      std::vector<fs::path> subs;
      for (const auto& e : fs::directory_iterator(dir))
        if (e.is_directory() && fs::exists(e.path() / "config.yaml")) subs.push_back(e.path());
      std::sort(subs.begin(), subs.end());
      for (const auto& sub : subs) add_run(s, sub.string(), sub.filename().string(), 0);
      if (subs.empty()) throw std::runtime_error(d + ": neither a sweep (sweep.json), a run (config.yaml), nor a "
                                                     "directory of runs");
      out.push_back(std::move(s));
    }
  }
  if (!loose.runs.empty() || !loose.skipped.empty()) out.push_back(std::move(loose));
  for (auto& s : out) {
    if (s.indexed) continue;
    s.swept_keys = differing_keys(s.runs);
    s.kind = guess_kind(s.runs, s.swept_keys);
  }
  return out;
}

std::vector<Point> points_of(const Study& s) {
  std::vector<Point> out;
  for (const auto& r : s.runs) {
    auto it = std::find_if(out.begin(), out.end(), [&](const Point& p) { return p.label == r.label; });
    if (it == out.end()) {
      out.push_back({r.label, {}});
      it = out.end() - 1;
    }
    it->runs.push_back(&r);
  }
  return out;
}

}  // namespace hpcinfer::studies
