// CLI11 glue shared by the subcommands.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <optional>

#include "core/cli/commands.hpp"

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

}  // namespace hpcinfer::cli
