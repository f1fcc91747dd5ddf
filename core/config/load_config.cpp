// load_config(): YAML file -> walk against the schema -> --set overrides -> range checks. See load_config.hpp.
#include "core/config/load_config.hpp"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "core/config/config_schema.hpp"

namespace hpcinfer {

namespace {

using namespace config_detail;

// A value that does not fit its key; the caller adds where.
struct ValueError {
  std::string message;
};

std::string join_keys(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// How a node looks, for "expected X, got Y".
std::string describe(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return "nothing (null)";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  if (n.Tag() == "!") return "the quoted string \"" + n.Scalar() + "\"";
  return "'" + n.Scalar() + "'";
}

// Plain (unquoted) scalars only for numbers and booleans: `tp: "2"` is a string, say so.
template <class T>
T scalar_as(const YAML::Node& n, const char* expected) {
  T v{};
  if (!n.IsScalar() || n.Tag() == "!" || !YAML::convert<T>::decode(n, v))
    throw ValueError{std::string("expected ") + expected + ", got " + describe(n)};
  return v;
}

std::string string_of(const YAML::Node& n) {
  if (!n.IsScalar()) throw ValueError{"expected a string, got " + describe(n)};
  return n.Scalar();
}

// Converts `n` into the field `ref` points at.
void assign(const Leaf& leaf, const FieldRef& ref, const YAML::Node& n) {
  if (auto p = std::get_if<std::string*>(&ref)) {
    **p = string_of(n);
  } else if (auto p = std::get_if<int*>(&ref)) {
    **p = scalar_as<int>(n, "an integer");
  } else if (auto p = std::get_if<float*>(&ref)) {
    float v = scalar_as<float>(n, "a number");
    if (!std::isfinite(v)) throw ValueError{"expected a finite number, got " + describe(n)};
    **p = v;
  } else if (auto p = std::get_if<uint64_t*>(&ref)) {
    if (n.IsScalar() && !n.Scalar().empty() && n.Scalar()[0] == '-')
      throw ValueError{"expected an unsigned integer, got " + describe(n)};
    **p = scalar_as<uint64_t>(n, "an unsigned integer");
  } else if (auto p = std::get_if<bool*>(&ref)) {
    **p = scalar_as<bool>(n, "true or false");
  } else if (auto p = std::get_if<std::vector<int>*>(&ref)) {
    if (!n.IsSequence()) throw ValueError{"expected a list of integers like [2, 3], got " + describe(n)};
    std::vector<int> out;
    for (const auto& e : n) out.push_back(scalar_as<int>(e, "a list of integers; one entry is not an integer:"));
    **p = out;
  } else if (auto p = std::get_if<std::vector<std::string>*>(&ref)) {
    if (leaf.scalar_as_list && n.IsScalar()) {
      **p = {n.Scalar()};
      return;
    }
    if (!n.IsSequence())
      throw ValueError{std::string("expected a list of strings") + (leaf.scalar_as_list ? " or one string" : "") +
                       ", got " + describe(n)};
    std::vector<std::string> out;
    for (const auto& e : n) {
      if (!e.IsScalar()) throw ValueError{"expected a list of strings; one entry is " + describe(e)};
      out.push_back(e.Scalar());
    }
    **p = out;
  }
}

// State of one load: the config being filled and where its values came from.
struct Loader {
  ExperimentConfig& cfg;
  std::string file;
  std::string override_arg;  // non-empty while applying one --set

  [[noreturn]] void fail(int line0, const std::string& key, const std::string& message) const {
    if (!override_arg.empty()) throw ConfigError("--set " + override_arg + ": " + message);
    std::string where = file + (line0 >= 0 ? ":" + std::to_string(line0 + 1) : "");
    throw ConfigError(where + ": " + (key.empty() ? "" : key + ": ") + message);
  }

  std::string unknown_key_message(const std::string& path) const {
    std::string parent = path.find('.') == std::string::npos ? "" : path.substr(0, path.rfind('.'));
    std::string hint = suggest(path);
    std::string known = "known keys here: " + join_keys(children(parent));
    if (!hint.empty()) return "unknown key, did you mean '" + hint + "'? (" + known + ")";
    return "unknown key (" + known + ")";
  }

  void record(const std::string& path, int line0) {
    if (override_arg.empty()) {
      cfg.key_lines[path] = line0 + 1;
      cfg.key_origins[path] = file + ":" + std::to_string(line0 + 1);
    } else {
      cfg.key_lines.erase(path);
      cfg.key_origins[path] = "--set " + override_arg;
    }
  }

  // Sets the value at `path` (a leaf or a section given as a mapping). `line0` is the key's 0-based line, -1 unknown.
  void apply(const std::string& path, const YAML::Node& value, int line0, std::set<std::string>& seen) {
    if (const Leaf* leaf = find_leaf(path)) {
      if (override_arg.empty() && !seen.insert(path).second)
        fail(line0, path, "duplicate key (first set at line " + std::to_string(cfg.key_lines[path]) + ")");
      try {
        assign(*leaf, leaf->field(cfg), value);
      } catch (const ValueError& e) {
        fail(line0, path, e.message);
      }
      record(path, line0);
      return;
    }
    if (!is_section(path)) fail(line0, path, unknown_key_message(path));
    if (!path.empty()) record(path, line0);
    if (!value.IsDefined() || value.IsNull()) return;  // `world:` with nothing under it
    if (!value.IsMap())
      fail(line0, path, std::string(path.empty() ? "the top level" : "this section") + " must be a mapping of " +
                            "keys (" + join_keys(children(path)) + "), got " + describe(value));
    for (auto it = value.begin(); it != value.end(); ++it) {
      const YAML::Node k = it->first;  // a copy: it-> points into a temporary (ASan: stack-use-after-scope, found by
                                       // fuzz_experiment_yaml)
      int kline = k.Mark().is_null() ? line0 : k.Mark().line;
      if (!k.IsScalar()) fail(kline, path, "keys must be plain names, got " + describe(k));
      std::string child = path.empty() ? k.Scalar() : path + "." + k.Scalar();
      const YAML::Node v = it->second;
      apply(child, v, kline, seen);
    }
  }

  void apply_override(const std::string& arg) {
    override_arg = arg;
    auto eq = arg.find('=');
    if (eq == std::string::npos || eq == 0) fail(-1, "", "expected key.path=value");
    std::string key = arg.substr(0, eq), text = arg.substr(eq + 1);
    if (!find_leaf(key) && !is_section(key)) fail(-1, key, unknown_key_message(key));
    if (!find_leaf(key) && key.find('.') == std::string::npos && text.empty())
      fail(-1, key, "a section needs a mapping value, e.g. " + key + "={...}");
    YAML::Node value;
    if (text.empty()) {
      value = YAML::Node(std::string());  // key= means the empty string
    } else {
      try {
        value = YAML::Load(text);
      } catch (const YAML::Exception& e) {
        fail(-1, key, "value is not valid YAML: " + e.msg);
      }
    }
    std::set<std::string> seen;
    apply(key, value, -1, seen);
    override_arg.clear();
  }

  // Cross-key and range checks, after the file and every override.
  void validate() const {
    if (!cfg.key_origins.count("model.path")) {
      auto it = cfg.key_lines.find("model");
      int line0 = it == cfg.key_lines.end() ? 0 : it->second - 1;
      fail(line0, "model.path", "required key is missing (the model file or directory; or --set model.path=...)");
    }
    for (const auto& leaf : schema()) {
      std::string msg = check_range(leaf.path, cfg);
      if (!msg.empty()) throw ConfigError(config_message(cfg, leaf.path, msg));
    }
  }
};

ExperimentConfig load_impl(const std::string& text, const std::string& source,
                           const std::vector<std::string>& overrides) {
  ExperimentConfig cfg;
  cfg.source_file = source;
  Loader loader{cfg, source, ""};
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {  // yaml-cpp says only "bad file" for it
    throw ConfigError(source + ":" + std::to_string(e.mark.line + 1) + ": malformed YAML: nested " +
                      std::to_string(e.depth()) + " levels deep, beyond what a configuration needs (column " +
                      std::to_string(e.mark.column + 1) + ")");
  } catch (const YAML::ParserException& e) {
    throw ConfigError(source + ":" + std::to_string(e.mark.line + 1) + ": malformed YAML: " + e.msg + " (column " +
                      std::to_string(e.mark.column + 1) + ")");
  } catch (const YAML::Exception& e) {
    throw ConfigError(source + ": malformed YAML: " + e.what());
  }
  std::set<std::string> seen;
  loader.apply("", root, 0, seen);
  for (const auto& o : overrides) loader.apply_override(o);
  loader.validate();
  return cfg;
}

}  // namespace

ExperimentConfig load_config(const std::string& file, const std::vector<std::string>& overrides) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ConfigError(file + ": cannot open the experiment configuration");
  std::stringstream ss;
  ss << in.rdbuf();
  return load_impl(ss.str(), file, overrides);
}

ExperimentConfig load_config_text(const std::string& yaml_text, const std::string& source_name,
                                  const std::vector<std::string>& overrides) {
  return load_impl(yaml_text, source_name, overrides);
}

std::vector<std::string> config_keys() {
  std::vector<std::string> out;
  for (const auto& l : schema()) out.push_back(l.path);
  return out;
}

std::string config_origin(const ExperimentConfig& config, const std::string& key) {
  auto it = config.key_origins.find(key);
  if (it != config.key_origins.end()) return it->second;
  return config.source_file.empty() ? "(defaults)" : config.source_file;
}

std::string config_message(const ExperimentConfig& config, const std::string& key, const std::string& message) {
  std::string origin = config_origin(config, key);
  if (origin.rfind("--set ", 0) == 0) return origin + ": " + message;
  return origin + ": " + key + ": " + message;
}

void check_world(const ExperimentConfig& config, int world_size, const std::string& source) {
  const int tp = config.world.tp, pp = config.world.pp, dp = config.world.dp;
  if (tp * pp * dp == world_size) return;
  std::string key = config.key_origins.count("world.tp") || !config.key_origins.count("world.pp") ? "world.tp"
                                                                                                  : "world.pp";
  if (dp > 1) key = "world.dp";
  const std::string product = dp > 1 ? "world.dp*world.tp*world.pp = " + std::to_string(dp) + "*" +
                                           std::to_string(tp) + "*" + std::to_string(pp) + " = "
                                     : "world.tp*world.pp = " + std::to_string(tp) + "*" + std::to_string(pp) + " = ";
  throw ConfigError(config_message(
      config, key,
      product + std::to_string(tp * pp * dp) + " but " + std::to_string(world_size) + " rank" +
          (world_size == 1 ? " was" : "s were") + " launched (from " + source + "); make " +
          (dp > 1 ? "dp*tp*pp" : "tp*pp") + " equal the number of ranks"));
}

std::string config_range_error(const ExperimentConfig& config, const std::string& key) {
  return config_detail::check_range(key, config);
}

}  // namespace hpcinfer
