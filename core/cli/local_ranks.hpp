// Local ranks of this binary, as `hpcinfer launch` and `bench-comm --ranks` start them: one place for the launch
// environment a forked rank gets (HPCINFER_RANK / WORLD_SIZE / LOCAL_RANK / JOB_ID, read by
// core/rendezvous/launch_env.hpp; HPCINFER_STORE_SECRET, read by core/rendezvous/store_secret.hpp).
#pragma once

#include <sys/prctl.h>
#include <sys/types.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/rendezvous/store_secret.hpp"

namespace hpcinfer::cli {

// Forks rank r of n running this binary with `args` (what follows the program name); stdout and stderr go to `log`
// when it is not empty. Returns the child's pid; throws when fork fails.
inline pid_t fork_local_rank(int r, int n, const std::string& job, const std::vector<std::string>& args,
                             const std::string& log = "") {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  // One fresh secret per launcher, inherited by all its ranks: admission to the job's TCP store (store_secret.hpp).
  // A secret the user exported is kept.
  static const bool secret_set = setenv("HPCINFER_STORE_SECRET", new_store_secret().c_str(), 0) == 0;
  (void)secret_set;
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed for rank " + std::to_string(r));
  if (pid > 0) return pid;
  // The rank dies with its launcher (even one killed by SIGKILL): no orphan ranks holding cores and ports.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(127);
  signal(SIGTERM, SIG_DFL);  // the launcher's handlers are not the rank's
  signal(SIGINT, SIG_DFL);
  if (!log.empty()) {
    FILE* f = std::freopen(log.c_str(), "w", stdout);
    if (!f || dup2(fileno(stdout), STDERR_FILENO) < 0) _exit(127);
  }
  setenv("HPCINFER_RANK", std::to_string(r).c_str(), 1);
  setenv("HPCINFER_WORLD_SIZE", std::to_string(n).c_str(), 1);
  setenv("HPCINFER_LOCAL_RANK", std::to_string(r).c_str(), 1);
  setenv("HPCINFER_JOB_ID", job.c_str(), 1);
  setenv("OMP_WAIT_POLICY", "passive", 0);  // ranks share cores: idle threads must not spin
  std::vector<char*> argv{const_cast<char*>(self.c_str())};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(self.c_str(), argv.data());
  _exit(127);
}

}  // namespace hpcinfer::cli
