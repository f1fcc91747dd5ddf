// hpcinfer launch -n N CONFIG [--serve] [--set k=v]...: forks N local ranks of `hpcinfer run` (or `hpcinfer serve`),
// one log file per rank; with plugins.comm: mpi, mpirun starts them (fork_mpirun) and launch supervises mpirun. SIGTERM / SIGINT to the launcher are passed on to every rank (serve: a graceful stop).
//
// Each child gets HPCINFER_RANK / HPCINFER_WORLD_SIZE / HPCINFER_LOCAL_RANK / HPCINFER_JOB_ID, a share of the
// cores (unless the config sets threads), and writes stdout+stderr to OUTDIR/ranks/rank_<r>.log.
// The share is cores / (ranks that compute at the same time) = cores / (tp x min(pp, micro_batches)): with fewer
// micro-batches than stages, only that many stages work at once (the first stage waits for a group's tokens before
// it sends the group again), so a pp=2 run with one micro-batch gives both ranks all cores and they take turns;
// idle ranks' threads spin briefly and sleep instead of spinning on cores the working rank needs
// (core/runtime/shared_cores_env.hpp).
// If a rank fails, the others get world.timeout_s (+5 s) to notice and exit before they are terminated (SIGTERM, then
// SIGKILL 5 s later: a stopped rank ignores SIGTERM). A second SIGTERM / SIGINT to the launcher kills at once. The
// ranks die with the launcher too (PR_SET_PDEATHSIG in local_ranks.hpp): killing it with SIGKILL leaves no orphans.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/cli/cli_util.hpp"
#include "core/cli/local_ranks.hpp"
#include "core/config/config_error.hpp"
#include "core/config/load_config.hpp"
#include "core/plugin/plugin_registry.hpp"

namespace hpcinfer::cli {
namespace {

volatile sig_atomic_t g_stop_signal = 0;
void remember_signal(int sig) { g_stop_signal = sig; }

std::string tail_of(const std::filesystem::path& p, size_t bytes) {
  std::ifstream f(p, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return s.size() > bytes ? s.substr(s.size() - bytes) : s;
}

}  // namespace

int cmd_launch(const Args& args) {
  CLI::App app{"Launch N local ranks of an experiment (processes on this host)", "hpcinfer launch"};
  int n = 0;
  std::string config;
  std::vector<std::string> sets;
  app.add_option("-n,--nprocs", n, "number of ranks")->required()->check(CLI::PositiveNumber);
  app.add_option("config", config, "experiment YAML")->required();
  app.add_option("--set", sets, "override a key: key.path=value (repeatable)");
  bool serve = false;
  app.add_flag("--serve", serve, "run `hpcinfer serve` in every rank (rank 0 listens) instead of `hpcinfer run`");
  bool fresh = false;
  app.add_flag("--fresh", fresh, "start over in outputs.dir (default: resume, skipping prompts already completed)");
  if (auto rc = parse_args(app, args)) return *rc;
  if (fresh) sets.push_back("outputs.fresh=true");
  ExperimentConfig cfg;
  try {
    cfg = load_config(config, sets);
    check_world(cfg, n, "hpcinfer launch -n " + std::to_string(n));
    if (!serve && cfg.world.dp > 1)
      throw ConfigError(config_message(cfg, "world.dp", "data-parallel replicas are for `hpcinfer serve` (launch --serve)"));
    validate_plugin_names(cfg);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  namespace fs = std::filesystem;
  const fs::path logs = fs::path(cfg.outputs.dir) / "ranks";
  fs::create_directories(logs);
  const std::string job = "local-" + std::to_string(getpid()) + "-" +
                          std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 1000000007);
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::string> child_args{serve ? "serve" : "run", config};
  for (const auto& s : sets) child_args.insert(child_args.end(), {"--set", s});
  const int busy_at_once = cfg.world.dp * cfg.world.tp * std::min(cfg.world.pp, cfg.batching.micro_batches);
  if (cfg.threads == 0)
    child_args.insert(child_args.end(), {"--set", "threads=" + std::to_string(std::max(1, cores / busy_at_once))});
  signal(SIGTERM, remember_signal);  // before the ranks start: a signal during their start-up is passed on too
  signal(SIGINT, remember_signal);
  // The processes launch supervises: the n ranks, or (plugins.comm: mpi) one mpirun that starts them, signalled as
  // its process group. `what[i]` names process i in messages.
  const bool via_mpirun = cfg.plugins.comm == "mpi";
  std::vector<pid_t> pids;
  std::vector<std::string> what;
  if (via_mpirun) {
    pids.push_back(fork_mpirun(n, child_args, logs.string()));
    what.push_back("mpirun (" + std::to_string(n) + " ranks)");
  } else {
    for (int r = 0; r < n; ++r) {
      pids.push_back(fork_local_rank(r, n, job, child_args, (logs / ("rank_" + std::to_string(r) + ".log")).string()));
      what.push_back("rank " + std::to_string(r));
    }
  }
  std::fprintf(stderr, "hpcinfer launch: %d ranks%s, job %s, logs in %s\n", n, via_mpirun ? " through mpirun" : "",
               via_mpirun ? "(mpirun's)" : job.c_str(), logs.c_str());
  const int procs = int(pids.size());

  std::vector<int> status(static_cast<size_t>(procs), -1);
  int alive = procs, first_failed = -1;
  using Clock = std::chrono::steady_clock;
  // The job comes down in bounded time in every case: SIGTERM to the ranks still running, then SIGKILL `kill_after`
  // later (a stopped or hung rank ignores SIGTERM until it runs again; SIGKILL ends it anyway).
  const auto kill_after = std::chrono::seconds(5);
  auto term_at = Clock::time_point::max(), kill_at = Clock::time_point::max();
  auto signal_running = [&](int sig) {
    for (int r = 0; r < procs; ++r)
      if (status[size_t(r)] < 0) kill(via_mpirun ? -pids[size_t(r)] : pids[size_t(r)], sig);
  };
  int stop_signals_seen = 0;
  while (alive > 0) {
    int st = 0;
    pid_t pid = waitpid(-1, &st, WNOHANG);
    if (pid > 0) {
      for (int r = 0; r < procs; ++r)
        if (pids[size_t(r)] == pid) {
          status[size_t(r)] = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
          --alive;
          if (status[size_t(r)] != 0 && first_failed < 0) {
            first_failed = r;  // the others get world.timeout_s (+5 s) to notice the failure and exit themselves
            term_at = std::min(term_at, Clock::now() + std::chrono::seconds(cfg.world.timeout_s + 5));
          }
        }
      continue;
    }
    if (g_stop_signal) {  // SIGTERM / SIGINT to the launcher: passed on (serve: a graceful stop); a second: SIGKILL
      g_stop_signal = 0;
      ++stop_signals_seen;
      if (stop_signals_seen == 1) {
        std::fprintf(stderr, "hpcinfer launch: stopping the job (SIGTERM to every rank; SIGKILL after world.timeout_s "
                             "+ 5 s, or at once on a second signal)\n");
        signal_running(SIGTERM);
        kill_at = std::min(kill_at, Clock::now() + std::chrono::seconds(cfg.world.timeout_s) + kill_after);
      } else {
        kill_at = Clock::now();
      }
    }
    if (Clock::now() >= term_at) {
      std::fprintf(stderr, "hpcinfer launch: %s failed and %d ranks are still running after world.timeout_s + 5 s: "
                           "SIGTERM, then SIGKILL after 5 s\n", what[size_t(first_failed)].c_str(), alive);
      signal_running(SIGTERM);
      term_at = Clock::time_point::max();
      kill_at = std::min(kill_at, Clock::now() + kill_after);
    }
    if (Clock::now() >= kill_at) {
      for (int r = 0; r < procs; ++r)
        if (status[size_t(r)] < 0) std::fprintf(stderr, "hpcinfer launch: %s did not exit: SIGKILL\n", what[size_t(r)].c_str());
      signal_running(SIGKILL);
      kill_at = Clock::time_point::max();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  int rc = 0;
  for (int r = 0; r < procs; ++r) {
    if (status[size_t(r)] == 0) continue;
    rc = 1;
    std::fprintf(stderr, "hpcinfer launch: %s exited with status %d\n", what[size_t(r)].c_str(), status[size_t(r)]);
    for (int k = via_mpirun ? 0 : r; k < (via_mpirun ? n : r + 1); ++k) {  // mpirun: every rank's log
      const fs::path log = logs / ("rank_" + std::to_string(k) + ".log");
      std::fprintf(stderr, "end of %s:\n%s\n", log.c_str(), tail_of(log, 800).c_str());
    }
  }
  if (rc == 0) std::fprintf(stderr, "hpcinfer launch: all %d ranks finished; results in %s\n", n, cfg.outputs.dir.c_str());
  return rc;
}

}  // namespace hpcinfer::cli
