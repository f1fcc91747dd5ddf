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
#include "core/runtime/shared_cores_env.hpp"

namespace hpcinfer::cli {

// One fresh secret per launcher, inherited by all its ranks (and mpirun's): admission to the job's TCP store
// (store_secret.hpp). A secret the user exported is kept. Set once, in the launcher, before the first fork.
inline void ensure_job_secret() {
  static const bool set = setenv("HPCINFER_STORE_SECRET", new_store_secret().c_str(), 0) == 0;
  (void)set;
}

// Forks rank r of n running this binary with `args` (what follows the program name); stdout and stderr go to `log`
// when it is not empty. Returns the child's pid; throws when fork fails.
inline pid_t fork_local_rank(int r, int n, const std::string& job, const std::vector<std::string>& args,
                             const std::string& log = "") {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  ensure_job_secret();
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
  if (n > 1) set_shared_cores_wait_policy();  // ranks share cores: idle threads spin briefly, then sleep
  std::vector<char*> argv{const_cast<char*>(self.c_str())};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(self.c_str(), argv.data());
  _exit(127);
}

// `mpirun -n N` of this binary with `args`, for the mpi transport (it needs the world MPI starts: forked ranks would
// each be an MPI world of one). mpirun leads its own process group (signal it with kill(-pid, sig): mpirun and its
// ranks); it gets SIGTERM when the launcher dies. Each rank's stdout and stderr go to LOG_DIR/rank_<r>.log.
inline pid_t fork_mpirun(int n, const std::vector<std::string>& args, const std::string& log_dir) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  ensure_job_secret();
  std::vector<std::string> argv{"mpirun", "--oversubscribe", "-n", std::to_string(n), "-x", "HPCINFER_LOG_DIR",
                                "-x", "HPCINFER_STORE_SECRET"};
  if (geteuid() == 0) argv.push_back("--allow-run-as-root");
  argv.insert(argv.end(), {"sh", "-c", "exec \"$0\" \"$@\" > \"$HPCINFER_LOG_DIR/rank_$OMPI_COMM_WORLD_RANK.log\" 2>&1", self});
  argv.insert(argv.end(), args.begin(), args.end());
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed for mpirun");
  if (pid > 0) {
    setpgid(pid, pid);  // also in the child: whichever runs first
    return pid;
  }
  setpgid(0, 0);
  if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent) _exit(127);
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  setenv("HPCINFER_LOG_DIR", log_dir.c_str(), 1);
  set_shared_cores_wait_policy();
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  execvp("mpirun", cargv.data());
  std::fprintf(stderr, "hpcinfer launch: cannot run mpirun (plugins.comm: mpi needs Open MPI's mpirun on PATH)\n");
  _exit(127);
}

}  // namespace hpcinfer::cli
