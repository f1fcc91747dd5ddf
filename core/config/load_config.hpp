// Loading, validating and writing experiment configurations (YAML, yaml-cpp 0.7).
//
// Schema: the fields of ExperimentConfig under their YAML names (model.path, world.tp, generation.stop, ...; the
// whole list is config_keys()). Everything is validated before any work starts: unknown keys (with a "did you mean"
// for near misses), wrong types, the required model.path, and value ranges. Every error is a ConfigError that names
// FILE:LINE and the key, or the offending --set argument.
//
// Paths (model.path, model.tokenizer, inputs.prompts, outputs.dir, plugin_path) are kept exactly as written; relative
// ones are relative to the current working directory of the process, NOT to the YAML file's directory.
#pragma once

#include <string>
#include <vector>

#include "core/config/config_error.hpp"
#include "core/config/experiment_config.hpp"

namespace hpcinfer {

// Reads `file`, then applies `overrides` in order ("key.path=value", the value parsed as a YAML scalar or flow
// collection, e.g. "world.layer_split=[2,3]"), then validates. Throws ConfigError.
ExperimentConfig load_config(const std::string& file, const std::vector<std::string>& overrides = {});

// The same from YAML text; `source_name` stands in for the file name in messages.
ExperimentConfig load_config_text(const std::string& yaml_text, const std::string& source_name,
                                  const std::vector<std::string>& overrides = {});

// Throws ConfigError unless world.tp * world.pp == world_size. `source` says where world_size came from (e.g.
// "SLURM_NTASKS"). The message names FILE:LINE of world.tp (or its --set) when known.
void check_world(const ExperimentConfig& config, int world_size, const std::string& source);

// Where `key` was set, for messages: "exp.yaml:4", "--set world.tp=2", or just the file name (a default).
std::string config_origin(const ExperimentConfig& config, const std::string& key);

// "ORIGIN: key: message" (or "--set k=v: message"): the text of a ConfigError about `key`.
std::string config_message(const ExperimentConfig& config, const std::string& key, const std::string& message);

// The resolved configuration (every key, defaults filled in) as YAML that load_config() reads back unchanged.
std::string dump_config_yaml(const ExperimentConfig& config);

// The range rule of one key (the schema's, the same the YAML gets): "" when `config`'s value is fine, else the message
// ("must be in (0, 1], got 2"). For commands whose flags set configuration fields (generate).
std::string config_range_error(const ExperimentConfig& config, const std::string& key);
// Every leaf key path of the schema, in schema order.
std::vector<std::string> config_keys();

}  // namespace hpcinfer
