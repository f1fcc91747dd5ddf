#include "core/studies/run_data.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace hpcinfer::studies {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

void flatten(const YAML::Node& n, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (n.IsMap()) {
    for (const auto& kv : n) flatten(kv.second, prefix.empty() ? kv.first.Scalar() : prefix + "." + kv.first.Scalar(), out);
  } else if (n.IsSequence()) {
    std::string s = "[";
    for (size_t i = 0; i < n.size(); ++i) s += (i ? "," : "") + (n[i].IsScalar() ? n[i].Scalar() : std::string("?"));
    out[prefix] = s + "]";
  } else if (n.IsScalar()) {
    out[prefix] = n.Scalar();
  } else {
    out[prefix] = "";
  }
}

int to_int(const std::map<std::string, std::string>& m, const std::string& key, int def) {
  const auto it = m.find(key);
  if (it == m.end()) return def;
  try {
    return std::stoi(it->second);
  } catch (const std::exception&) {
    return def;
  }
}

json read_json(const fs::path& p) {
  std::ifstream in(p);
  if (!in) return json();
  json j = json::parse(in, nullptr, false);
  return j.is_discarded() ? json() : j;
}

bool read_summary(RunData& r, const fs::path& dir) {
  const json s = read_json(dir / "summary.json");
  if (!s.is_object() || !s.contains("wall_s") || !s["wall_s"].is_number() || !s.contains("generated_tokens") ||
      !s["generated_tokens"].is_number())
    return false;
  r.generated_tokens = s["generated_tokens"].get<double>();
  r.wall_s = s["wall_s"].get<double>();
  if (s.contains("idle_share") && s["idle_share"].is_number()) r.idle_share = s["idle_share"].get<double>();
  r.source = (dir / "summary.json").string();
  return true;
}

void read_metrics(RunData& r, const fs::path& dir) {
  double wall = 0, idle = 0, engine = 0;
  for (int rank = 0; rank < r.world(); ++rank) {
    const fs::path p = dir / "metrics" / ("rank_" + std::to_string(rank) + ".json");
    const json m = read_json(p);
    if (!m.is_object() || !m.contains("engine_wall_s")) {
      r.problem = "no engine_wall_s in " + p.string();
      return;
    }
    const double w = m["engine_wall_s"].get<double>();
    wall = std::max(wall, w);
    engine += w;
    idle += m.value("idle_recv_wait_s", 0.0);
  }
  double tokens = 0;
  for (const auto& [id, c] : r.completions) tokens += double(c.token_ids.size());
  r.generated_tokens = tokens;
  r.wall_s = wall;
  r.idle_share = engine > 0 ? idle / engine : NAN;
  r.source = r.completions_file + " + " + (dir / "metrics").string() + "/rank_" +
             (r.world() == 1 ? std::string("0") : "{0.." + std::to_string(r.world() - 1) + "}") + ".json";
}

}  // namespace

std::map<std::string, std::string> flatten_config(const std::string& file) {
  std::map<std::string, std::string> out;
  try {
    flatten(YAML::LoadFile(file), "", out);
  } catch (const YAML::Exception&) {
    out.clear();
  }
  return out;
}

RunData load_run(const std::string& dir_text) {
  RunData r;
  const fs::path dir(dir_text);
  r.dir = dir_text;
  r.run_id = dir.filename().string();
  if (r.run_id.empty()) r.run_id = dir.parent_path().filename().string();
  r.label = r.run_id;
  r.config = flatten_config((dir / "config.yaml").string());
  if (r.config.empty()) {
    r.problem = "no readable " + (dir / "config.yaml").string();
    return r;
  }
  r.tp = to_int(r.config, "world.tp", 1);
  r.pp = to_int(r.config, "world.pp", 1);

  r.completions_file = (dir / "completions.jsonl").string();
  std::ifstream in(r.completions_file);
  if (!in) {
    r.problem = "no " + r.completions_file;
    return r;
  }
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("id") || !j.contains("token_ids")) {
      r.problem = r.completions_file + ": a line without id/token_ids (an unfinished run?)";
      return r;
    }
    const std::string id = j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump();
    r.completions[id] = {j.value("prompt", ""), j["token_ids"].get<std::vector<int>>()};
  }
  if (!read_summary(r, dir)) read_metrics(r, dir);
  return r;
}

}  // namespace hpcinfer::studies
