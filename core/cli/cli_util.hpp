// CLI11 glue shared by the subcommands.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <optional>

#include "core/cli/commands.hpp"
#include "core/config/config_error.hpp"
#include "core/config/load_config.hpp"
#include "core/plugin/plugin_registry.hpp"
#include "core/rendezvous/launch_env.hpp"

namespace hpcinfer::cli {

// Parses args into app. Returns an exit code to return right away (0 after --help, 2 on a usage error), or
// nullopt to go on.
inline std::optional<int> parse_args(CLI::App& app, const Args& args) {
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes the vector in reverse order
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return std::nullopt;
}

// The configuration of one rank (run, serve): loaded with the overrides, the launcher's world read and checked
// against it, the plugin names checked; `check` adds the command's own rules (it throws ConfigError). Returns 2 after
// printing the error (a configuration or launcher-environment fault), or nullopt to go on.
template <typename Check>
std::optional<int> load_rank_config(const std::string& config, const std::vector<std::string>& sets,
                                    const char* command, ExperimentConfig& cfg, LaunchEnv& env, Check check) {
  try {
    cfg = load_config(config, sets);
    env = detect_launch_env();
    check_world(cfg, env.size, env.source == "none" ? "a single process" : env.source);
    check(cfg);
    validate_plugin_names(cfg);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  } catch (const std::invalid_argument& e) {  // malformed launcher environment
    std::fprintf(stderr, "%s: %s\n", command, e.what());
    return 2;
  }
  return std::nullopt;
}

}  // namespace hpcinfer::cli
