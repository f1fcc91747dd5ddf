#include "core/studies/sweep_index.hpp"

#include <ctime>
#include <filesystem>
#include <fstream>

namespace hpcinfer::studies {
namespace fs = std::filesystem;

std::string now_iso() {
  char ts[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S%z", std::localtime(&t));
  return ts;
}

FinishCheck point_finished(const std::string& run_dir, int world) {
  const fs::path dir(run_dir);
  if (!fs::is_directory(dir)) return {false, "no results directory"};
  long requests = -1;
  for (int r = 0; r < world; ++r) {
    const fs::path m = dir / "metrics" / ("rank_" + std::to_string(r) + ".json");
    std::ifstream in(m);
    if (!in) return {false, "no " + m.string()};
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return {false, m.string() + " does not parse"};
    if (j.contains("requests") && j["requests"].is_number()) requests = j["requests"].get<long>();
  }
  const fs::path c = dir / "completions.jsonl";
  std::ifstream in(c);
  if (!in) return {false, "no " + c.string()};
  long lines = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    if (nlohmann::json::parse(line, nullptr, false).is_discarded())
      return {false, c.string() + ": line " + std::to_string(lines + 1) + " is not complete JSON"};
    ++lines;
  }
  if (lines == 0) return {false, c.string() + " is empty"};
  if (requests >= 0 && lines != requests)
    return {false, c.string() + " has " + std::to_string(lines) + " completions, the metrics say " +
                       std::to_string(requests) + " requests"};
  return {true, ""};
}

nlohmann::json index_json(const SweepSpec& spec, const std::map<std::string, PointStatus>& status) {
  nlohmann::json j;
  j["sweep_file"] = spec.file;
  j["experiment"] = spec.experiment;
  j["kind"] = spec.kind;
  j["base"] = spec.base;
  j["output_root"] = spec.output_root;
  j["repeats"] = spec.repeats;
  j["set"] = nlohmann::json::object();
  for (const auto& [k, v] : spec.fixed) j["set"][k] = v;
  j["swept_keys"] = spec.swept_keys;
  j["baseline"] = spec.baseline_label;
  j["updated"] = now_iso();
  j["points"] = nlohmann::json::array();
  for (const auto& p : spec.points) {
    nlohmann::json e{{"run_id", p.run_id}, {"label", p.label}, {"repeat", p.repeat}, {"dir", spec.run_dir(p)},
                     {"world", p.world()}, {"tp", p.tp}, {"pp", p.pp}};
    e["overrides"] = nlohmann::json::object();
    for (const auto& [k, v] : p.overrides) e["overrides"][k] = v;
    const auto it = status.find(p.run_id);
    const PointStatus st = it == status.end() ? PointStatus{} : it->second;
    e["status"] = st.state;
    e["exit_code"] = st.exit_code;
    e["seconds"] = st.seconds;
    e["job_id"] = st.job_id;
    e["at"] = st.finished_at;
    e["note"] = st.note;
    j["points"].push_back(e);
  }
  return j;
}

void write_index(const std::string& file, const nlohmann::json& index) {
  fs::create_directories(fs::path(file).parent_path());
  const std::string tmp = file + ".tmp";
  {
    std::ofstream out(tmp);
    out << index.dump(2) << "\n";
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  fs::rename(tmp, file);
}

std::map<std::string, PointStatus> read_index_status(const std::string& file) {
  std::map<std::string, PointStatus> out;
  std::ifstream in(file);
  if (!in) return out;
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.contains("points") || !j["points"].is_array()) return out;
  for (const auto& e : j["points"]) {
    PointStatus st;
    st.state = e.value("status", "pending");
    st.exit_code = e.value("exit_code", -1);
    st.seconds = e.value("seconds", 0.0);
    st.job_id = e.value("job_id", "");
    st.finished_at = e.value("at", "");
    st.note = e.value("note", "");
    out[e.value("run_id", "")] = st;
  }
  return out;
}

}  // namespace hpcinfer::studies
