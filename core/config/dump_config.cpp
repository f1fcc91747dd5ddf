// dump_config_yaml(): the resolved configuration, every key with defaults filled in, for the results directory.
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <string>

#include "core/config/config_schema.hpp"
#include "core/config/load_config.hpp"

namespace hpcinfer {

namespace {

using namespace config_detail;

// Shortest decimal text that reads back as the same float (0.7f -> "0.7", not "0.699999988").
std::string float_text(float v) {
  char buf[64];
  for (int prec = 6; prec <= 9; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, double(v));
    if (std::strtof(buf, nullptr) == v) break;
  }
  std::string s = buf;
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // keep it a float to the eye
  return s;
}

void emit_value(YAML::Emitter& out, const FieldRef& ref) {
  if (auto p = std::get_if<std::string*>(&ref)) {
    out << YAML::DoubleQuoted << **p;
  } else if (auto p = std::get_if<int*>(&ref)) {
    out << **p;
  } else if (auto p = std::get_if<float*>(&ref)) {
    out << float_text(**p);
  } else if (auto p = std::get_if<uint64_t*>(&ref)) {
    out << **p;
  } else if (auto p = std::get_if<bool*>(&ref)) {
    out << (**p ? "true" : "false");
  } else if (auto p = std::get_if<std::vector<int>*>(&ref)) {
    out << YAML::Flow << YAML::BeginSeq;
    for (int v : **p) out << v;
    out << YAML::EndSeq;
  } else if (auto p = std::get_if<std::vector<std::string>*>(&ref)) {
    out << YAML::Flow << YAML::BeginSeq;
    for (const auto& v : **p) out << YAML::DoubleQuoted << v;
    out << YAML::EndSeq;
  }
}

}  // namespace

std::string dump_config_yaml(const ExperimentConfig& config) {
  ExperimentConfig copy = config;  // schema accessors take a mutable config
  YAML::Emitter out;
  out << YAML::Comment("hpcinfer resolved configuration (every key; defaults filled in)");
  if (!config.source_file.empty()) out << YAML::Newline << YAML::Comment("from " + config.source_file);
  for (const auto& [key, origin] : config.key_origins)
    if (origin.rfind("--set ", 0) == 0) out << YAML::Newline << YAML::Comment(origin);
  out << YAML::BeginMap;
  std::string open_section;
  for (const auto& leaf : schema()) {
    std::string path = leaf.path;
    auto dot = path.find('.');
    std::string section = dot == std::string::npos ? "" : path.substr(0, dot);
    std::string key = dot == std::string::npos ? path : path.substr(dot + 1);
    if (section != open_section) {
      if (!open_section.empty()) out << YAML::EndMap;
      if (!section.empty()) out << YAML::Key << section << YAML::Value << YAML::BeginMap;
      open_section = section;
    }
    out << YAML::Key << key << YAML::Value;
    emit_value(out, leaf.field(copy));
  }
  if (!open_section.empty()) out << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace hpcinfer
