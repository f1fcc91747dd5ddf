// The experiment YAML schema as data: one Leaf per key path, pointing at its ExperimentConfig field. Internal to
// core/config (load_config.cpp reads with it, dump_config.cpp writes with it).
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "core/config/experiment_config.hpp"

namespace hpcinfer::config_detail {

// A pointer to one field; the alternative says the YAML type the key takes.
using FieldRef = std::variant<std::string*, int*, float*, uint64_t*, bool*, std::vector<int>*,
                              std::vector<std::string>*>;

struct Leaf {
  const char* path;                      // "world.tp"
  FieldRef (*field)(ExperimentConfig&);  // where its value lives
  bool scalar_as_list = false;           // a list key that also takes one string (plugin_path)
};

// Every key, in the order dump_config_yaml() writes them.
const std::vector<Leaf>& schema();
const Leaf* find_leaf(const std::string& path);
// Whether `path` is a section (model, world, ...): a prefix of some leaf.
bool is_section(const std::string& path);
// Direct children names of a section ("" = top level), in schema order: "model", "plugins", ..., or "tp", "pp", ...
std::vector<std::string> children(const std::string& section);
// A near-miss suggestion for an unknown key `path`, or "": siblings by edit distance, then any leaf whose last
// component matches (e.g. "tp" at the top level -> "world.tp").
std::string suggest(const std::string& path);

// Range checks of one key's value; returns "" when fine, else the message (e.g. "must be >= 1, got 0").
std::string check_range(const std::string& path, const ExperimentConfig& c);

}  // namespace hpcinfer::config_detail
