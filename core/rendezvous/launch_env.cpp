#include "core/rendezvous/launch_env.hpp"

#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <stdexcept>

namespace hpcinfer {
namespace {

// Whole-string integer parse; throws naming the variable.
int parse_int(const char* var, const char* value, int min_value) {
  std::string s(value);
  int out = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size())
    throw std::invalid_argument("launch environment: " + std::string(var) + "='" + s + "' is not an integer");
  if (out < min_value)
    throw std::invalid_argument("launch environment: " + std::string(var) + "=" + s + " must be >= " +
                                std::to_string(min_value));
  return out;
}

struct Source {
  const char* name;
  const char* rank_var;
  const char* size_var;
  const char* local_var;
  const char* job_var;
};

constexpr Source kSources[] = {
    {"hpcinfer", "HPCINFER_RANK", "HPCINFER_WORLD_SIZE", "HPCINFER_LOCAL_RANK", "HPCINFER_JOB_ID"},
    {"slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_JOB_ID"},
    {"openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_MCA_ess_base_jobid"},
};

}  // namespace

void log_line(const LaunchEnv& env, const std::string& msg) {
  char ts[32];
  std::time_t t = std::time(nullptr);
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", std::localtime(&t));
  std::fprintf(stderr, "%s rank %d/%d %s: %s\n", ts, env.rank, env.size, env.host.c_str(), msg.c_str());
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown-host";
  return buf;
}

LaunchEnv detect_launch_env(const std::function<const char*(const char*)>& getenv_fn) {
  LaunchEnv env;
  // Under Slurm the node's name (emulated nodes share one host name; real ones match it anyway).
  const char* node = getenv_fn("SLURMD_NODENAME");
  env.host = node && *node ? node : host_name();
  env.source = "none";
  for (const Source& src : kSources) {
    const char* rank = getenv_fn(src.rank_var);
    if (!rank) continue;
    const char* size = getenv_fn(src.size_var);
    if (!size)
      throw std::invalid_argument("launch environment: " + std::string(src.rank_var) + " is set but " +
                                  src.size_var + " is not");
    env.source = src.name;
    env.rank = parse_int(src.rank_var, rank, 0);
    env.size = parse_int(src.size_var, size, 1);
    if (env.rank >= env.size)
      throw std::invalid_argument("launch environment: " + std::string(src.rank_var) + "=" + rank +
                                  " is not below " + src.size_var + "=" + size);
    const char* local = getenv_fn(src.local_var);
    // Our local launcher runs every rank on one host, so its local rank defaults to the rank.
    env.local_rank = local ? parse_int(src.local_var, local, 0) : (src.name == std::string("hpcinfer") ? env.rank : 0);
    if (const char* job = getenv_fn(src.job_var)) env.job_id = job;
    return env;
  }
  return env;
}

LaunchEnv detect_launch_env() {
  return detect_launch_env([](const char* name) -> const char* { return std::getenv(name); });
}

}  // namespace hpcinfer
