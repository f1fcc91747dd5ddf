// Who am I in the job: rank, world size and local rank, read from the environment that launched this process.
#pragma once

#include <functional>
#include <string>

namespace hpcinfer {

struct LaunchEnv {
  int rank = 0;
  int size = 1;
  int local_rank = 0;    // index among the ranks on this host
  std::string source;    // "hpcinfer" (our local launcher), "slurm" (srun), "openmpi" (mpirun) or "none"
  std::string job_id;    // HPCINFER_JOB_ID / SLURM_JOB_ID / OMPI_MCA_ess_base_jobid; empty when unknown
  std::string host;      // the node's name: SLURMD_NODENAME under Slurm, else gethostname()
};

// gethostname(): the name other hosts reach this one by (LaunchEnv::host may be a Slurm node name that is not).
std::string host_name();
// One line on stderr: "TIME rank R/N HOST: msg" (what every rank's log says, so the lines of a job sort and grep alike).
void log_line(const LaunchEnv& env, const std::string& msg);

// Reads, first found wins:
//   HPCINFER_RANK, HPCINFER_WORLD_SIZE, HPCINFER_LOCAL_RANK (default: rank), HPCINFER_JOB_ID   (hpcinfer launch)
//   SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID (default 0), SLURM_JOB_ID                          (srun)
//   OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_RANK (default 0)           (mpirun)
// else rank 0 of 1 ("none"). A source is chosen by its rank variable; its size variable must then be set too.
// Throws std::invalid_argument naming the variable and its value when a value is not an integer or out of range.
LaunchEnv detect_launch_env();
// Same, with a custom lookup (tests): returns nullptr for an unset variable.
LaunchEnv detect_launch_env(const std::function<const char*(const char*)>& getenv_fn);

}  // namespace hpcinfer
