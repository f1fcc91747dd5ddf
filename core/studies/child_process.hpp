// Running other programs from the sweep: fork + execvp, no shell in between (arguments are passed as they are).
#pragma once

#include <string>
#include <vector>

namespace hpcinfer::studies {

// Runs argv with stdout and stderr appended to log_file, with `env` ("NAME=value") added to the environment;
// returns the exit status (128 + signal when killed, 127 when it could not be started).
int run_to_file(const std::vector<std::string>& argv, const std::string& log_file,
                const std::vector<std::string>& env = {});

struct Captured {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};
Captured run_capture(const std::vector<std::string>& argv);

// The command line as a shell would take it back (single quotes where needed), for logs and --dry-run.
std::string shell_join(const std::vector<std::string>& argv);

}  // namespace hpcinfer::studies
