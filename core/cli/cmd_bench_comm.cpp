// hpcinfer bench-comm --comm gloo|mpi [--ranks N] [--min-bytes 8] [--max-bytes 64M] [--iters 20] [--json]
// All-reduce (f32 sum) latency and bandwidth of a transport plugin, nccl-tests style: for each message size (x2
// from --min-bytes to --max-bytes) the time per call of --iters back-to-back calls, the median of 5 such rounds (each
// after a barrier and a warm-up call), the algorithm bandwidth
// (bytes / time) and the bus bandwidth (algbw x 2 (n - 1) / n: what each rank's link carries in a ring).
// Ranks: under `mpirun` / `srun` / `hpcinfer launch` from the environment; otherwise --ranks N forks N local ranks
// of this same command (a file store in a fresh temporary directory). Rank 0 prints the table (or one JSON object).
// Every rank checks one call's sums per size (integers: exact), so a wrong transport fails the benchmark.
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/cli/cli_util.hpp"
#include "core/cli/commands.hpp"
#include "core/cli/local_ranks.hpp"
#include "core/config/experiment_config.hpp"
#include "core/plugin/plugin_registry.hpp"
#include "core/rendezvous/kv_store.hpp"
#include "core/rendezvous/launch_env.hpp"

namespace fs = std::filesystem;

namespace hpcinfer::cli {
namespace {

using Clock = std::chrono::steady_clock;

// Forks n local ranks of this command; returns the first non-zero exit status.
int fork_ranks(int n, const Args& args) {
  const std::string job = "bench-comm-" + std::to_string(getpid());
  std::vector<std::string> child{"bench-comm"};
  child.insert(child.end(), args.begin(), args.end());
  std::vector<pid_t> pids;
  for (int r = 0; r < n; ++r) pids.push_back(fork_local_rank(r, n, job, child));
  int rc = 0;
  for (pid_t p : pids) {
    int status = 0;
    waitpid(p, &status, 0);
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code != 0 && rc == 0) rc = code;
  }
  return rc;
}

}  // namespace

int cmd_bench_comm(const Args& args) {
  CLI::App app{"All-reduce latency and bandwidth of a transport plugin", "hpcinfer bench-comm"};
  std::string comm = "gloo", store_dir;
  int ranks = 2, iters = 20;
  double min_bytes = 8, max_bytes = 64.0 * 1024 * 1024;
  bool json = false;
  app.add_option("--comm", comm, "transport plugin: gloo | mpi | ...");
  app.add_option("--ranks", ranks, "local ranks to fork when no launcher set the world (default 2)")
      ->check(CLI::Range(1, 64));
  app.add_option("--min-bytes", min_bytes, "smallest message (default 8)")->check(CLI::PositiveNumber);
  app.add_option("--max-bytes", max_bytes, "largest message (default 64 MiB)")->check(CLI::PositiveNumber);
  app.add_option("--iters", iters, "back-to-back calls per timed round (default 20; median of 5 rounds)")
      ->check(CLI::PositiveNumber);
  app.add_option("--store", store_dir, "file store directory shared by the ranks (default: a fresh one)");
  app.add_flag("--json", json, "print one JSON object (rank 0)");
  if (auto rc = parse_args(app, args)) return *rc;

  const LaunchEnv env = detect_launch_env();
  if (env.size == 1) {
    if (ranks == 1) throw std::invalid_argument("bench-comm: needs at least 2 ranks (--ranks or a launcher)");
    if (store_dir.empty()) {  // every forked rank gets the same fresh directory
      char tmpl[] = "/tmp/hpcinfer-bench-comm.XXXXXX";
      if (!mkdtemp(tmpl)) throw std::runtime_error("bench-comm: mkdtemp failed");
      Args with(args);
      with.push_back("--store");
      with.push_back(tmpl);
      const int rc = fork_ranks(ranks, with);
      fs::remove_all(tmpl);
      return rc;
    }
    return fork_ranks(ranks, args);
  }
  const auto timeout = std::chrono::milliseconds(120000);
  const std::string spec = store_dir.empty() ? "file:///tmp/hpcinfer-bench-comm-" + env.job_id : "file://" + store_dir;
  auto store = make_store(spec, env.rank, env.size, timeout);
  ExperimentConfig cfg;
  cfg.plugins.comm = comm;
  PluginRegistry registry = PluginRegistry::for_config(cfg);
  auto c = registry.create_comm(comm);
  CommInit init;
  init.rank = env.rank;
  init.size = env.size;
  init.store = store.get();
  init.prefix = "bench-comm/" + env.job_id;
  init.timeout = timeout;
  c->init(init);

  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  const int n = env.size;
  for (double b = min_bytes; b <= max_bytes * 1.0001; b *= 2) {
    const size_t count = std::max<size_t>(1, size_t(b) / sizeof(float));
    std::vector<float> v(count);
    // One checked call, then rounds of back-to-back calls timed together (as nccl-tests: a barrier over the
    // transport before each round would add its own skew to small messages).
    for (size_t i = 0; i < count; ++i) v[i] = float((i + size_t(env.rank)) % 64);
    c->allreduce_sum_f32(v.data(), count);
    for (size_t i = 0; i < count; i += std::max<size_t>(1, count / 97)) {
      double want = 0;
      for (int r = 0; r < n; ++r) want += double((i + size_t(r)) % 64);
      if (double(v[i]) != want)
        throw std::runtime_error("bench-comm: rank " + std::to_string(env.rank) + ": sum at " + std::to_string(i) +
                                 " is " + std::to_string(v[i]) + ", expected " + std::to_string(want));
    }
    std::fill(v.begin(), v.end(), 0.0f);
    std::vector<double> secs;
    for (int round = 0; round < 5; ++round) {
      c->barrier();
      c->allreduce_sum_f32(v.data(), count);  // warm-up, and the ranks start the round together
      const auto t0 = Clock::now();
      for (int it = 0; it < iters; ++it) c->allreduce_sum_f32(v.data(), count);
      secs.push_back(std::chrono::duration<double>(Clock::now() - t0).count() / iters);
    }
    std::sort(secs.begin(), secs.end());
    const double med = secs[secs.size() / 2], bytes = double(count * sizeof(float));
    const double algbw = bytes / med / 1e9, busbw = algbw * 2.0 * (n - 1) / n;
    rows.push_back({{"bytes", size_t(bytes)}, {"time_us", med * 1e6}, {"algbw_GBps", algbw}, {"busbw_GBps", busbw}});
  }
  c->barrier();
  if (env.rank != 0) return 0;
  const char* shm = std::getenv("HPCINFER_GLOO_SHM");
  const std::string path = comm != "gloo" ? "" : (shm && std::string(shm) == "0" ? " (TCP)" : " (shared memory on one host)");
  if (json) {
    std::printf("%s\n", nlohmann::ordered_json({{"comm", comm + path}, {"ranks", n}, {"iters", iters}, {"rows", rows}})
                            .dump(2)
                            .c_str());
    return 0;
  }
  std::printf("bench-comm: all-reduce f32 sum, %s%s, %d ranks, rounds of %d calls (median)\n", comm.c_str(), path.c_str(), n,
              iters);
  std::printf("%12s %12s %12s %12s\n", "bytes", "time_us", "algbw_GB/s", "busbw_GB/s");
  for (const auto& r : rows)
    std::printf("%12zu %12.1f %12.3f %12.3f\n", r["bytes"].get<size_t>(), r["time_us"].get<double>(),
                r["algbw_GBps"].get<double>(), r["busbw_GBps"].get<double>());
  return 0;
}

}  // namespace hpcinfer::cli
