#include "core/studies/sweep_runner.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "core/studies/child_process.hpp"
#include "core/studies/sweep_index.hpp"

namespace hpcinfer::studies {
namespace {
namespace fs = std::filesystem;

std::string fmt_s(double s) {
  char b[32];
  if (s < 120)
    std::snprintf(b, sizeof b, "%.1f s", s);
  else
    std::snprintf(b, sizeof b, "%dm%02ds", int(s) / 60, int(s) % 60);
  return b;
}

std::string tail_of(const std::string& file, size_t bytes) {
  std::ifstream f(file, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return s.size() > bytes ? s.substr(s.size() - bytes) : s;
}

// A local point: `hpcinfer launch -n WORLD`; with plugins.comm mpi, `mpirun -n WORLD hpcinfer run` instead (the mpi
// transport needs the world MPI starts; launch's forked ranks would each be an MPI world of one), with the same
// core share launch would give (cores / ranks computing at once) unless the config sets threads.
std::vector<std::string> launch_argv(const SweepSpec& spec, const SweepPoint& p, const std::string& self) {
  std::vector<std::string> a;
  if (p.comm == "mpi") {
    a = {"mpirun", "--oversubscribe", "-n", std::to_string(p.world())};
    if (geteuid() == 0) a.push_back("--allow-run-as-root");
    a.insert(a.end(), {self, "run", spec.base});
  } else {
    a = {self, "launch", "-n", std::to_string(p.world()), spec.base};
  }
  for (const auto& s : spec.fixed_set_args()) a.insert(a.end(), {"--set", s});
  for (const auto& s : p.set_args()) a.insert(a.end(), {"--set", s});
  a.insert(a.end(), {"--set", "outputs.dir=" + spec.run_dir(p)});
  if (p.comm == "mpi" && p.threads == 0) {
    const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
    a.insert(a.end(), {"--set", "threads=" + std::to_string(std::max(1, cores / std::max(1, p.busy_ranks)))});
  }
  return a;
}

std::vector<std::string> sbatch_argv(const SweepSpec& spec, const SweepPoint& p, const SweepOptions& opt) {
  std::vector<std::string> a{"sbatch",
                             "--parsable",
                             "--job-name=" + spec.experiment,
                             "--output=slurm_logs/" + spec.experiment + "_%j.out",
                             "--ntasks=" + std::to_string(p.world()),
                             "--export=ALL,HPCINFER_EXP=" + spec.experiment + ",HPCINFER_RUN_ID=" + p.run_id +
                                 ",HPCINFER_RUN_DIR=" + spec.run_dir(p) + ",HPCINFER_BIN=" + opt.self_exe};
  a.insert(a.end(), spec.sbatch_args.begin(), spec.sbatch_args.end());
  a.insert(a.end(), {opt.submit_script, spec.base});
  for (const auto& s : spec.fixed_set_args()) a.insert(a.end(), {"--set", s});
  for (const auto& s : p.set_args()) a.insert(a.end(), {"--set", s});
  return a;
}

// Whether Slurm still has the job (pending, running, completing): squeue prints its state.
bool in_queue(const std::string& job) {
  if (job.empty()) return false;
  const Captured c = run_capture({"squeue", "-h", "-j", job, "-o", "%T"});
  if (c.exit_code != 0) return false;  // unknown job id: it has left the queue
  return c.output.find_first_not_of(" \n\t") != std::string::npos;
}

class Sweep {
 public:
  Sweep(const SweepSpec& spec, const SweepOptions& opt)
      : spec_(spec), opt_(opt), index_file_(spec.experiment_dir() + "/sweep.json") {
    status_ = read_index_status(index_file_);
  }

  int run() {
    std::vector<const SweepPoint*> todo;
    int finished = 0;
    for (const auto& p : spec_.points) {
      const FinishCheck f = point_finished(spec_.run_dir(p), p.world());
      auto& st = status_[p.run_id];
      if (f.finished) {
        ++finished;
        if (st.state != "done") st = PointStatus{"done", 0, st.seconds, st.job_id, now_iso(), "found finished"};
        if (opt_.dry_run) list(p, "finished", {});
        continue;
      }
      if (opt_.slurm && !opt_.dry_run && in_queue(st.job_id)) {
        st.state = "queued";
        st.note = "job " + st.job_id + " is still in the Slurm queue: not submitted again";
        std::fprintf(stderr, "hpcinfer sweep: %s: %s\n", p.run_id.c_str(), st.note.c_str());
        queued_.push_back(&p);
        continue;
      }
      todo.push_back(&p);
      if (opt_.dry_run)
        list(p, "to run (" + f.why + ")", opt_.slurm ? sbatch_argv(spec_, p, opt_) : launch_argv(spec_, p, opt_.self_exe));
    }
    std::fprintf(stderr, "hpcinfer sweep: %s (%s): %zu runs (%zu points x %d repeats), %d finished, %zu to %s%s\n",
                 spec_.experiment.c_str(), spec_.kind.c_str(), spec_.points.size(),
                 spec_.points.size() / size_t(spec_.repeats), spec_.repeats, finished, todo.size(),
                 opt_.slurm ? "submit" : "run", opt_.dry_run ? " (dry run: nothing run, nothing written)" : "");
    if (opt_.dry_run) return 0;
    save();
    return opt_.slurm ? submit_all(todo) : run_all(todo);
  }

 private:
  void list(const SweepPoint& p, const std::string& what, const std::vector<std::string>& cmd) {
    std::string o;
    for (const auto& a : p.set_args()) o += (o.empty() ? "" : " ") + a;
    std::printf("%-40s world %d (tp %d x pp %d)  %s  [%s]\n", p.run_id.c_str(), p.world(), p.tp, p.pp, what.c_str(),
                o.empty() ? "base" : o.c_str());
    if (!cmd.empty()) std::printf("  %s\n", shell_join(cmd).c_str());
    std::fflush(stdout);  // in order with the progress lines on stderr
  }

  void save() { write_index(index_file_, index_json(spec_, status_)); }

  // A directory left by a run that did not finish is removed, so no stale rank's file can pass for a new one.
  void clear_stale(const SweepPoint& p) {
    const fs::path dir = spec_.run_dir(p);
    if (fs::exists(dir)) {
      std::fprintf(stderr, "hpcinfer sweep: %s: %s not finished (%s): run again from scratch\n", p.run_id.c_str(),
                   dir.c_str(), point_finished(dir.string(), p.world()).why.c_str());
      fs::remove_all(dir);
    }
    fs::create_directories(dir);
  }

  int run_all(const std::vector<const SweepPoint*>& todo) {
    int failed = 0;
    double spent = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < todo.size(); ++i) {
      const SweepPoint& p = *todo[i];
      clear_stale(p);
      auto& st = status_[p.run_id];
      st = PointStatus{"running", -1, 0, "", now_iso(), ""};
      save();
      const std::string log = spec_.run_dir(p) + "/launch.log";
      const auto argv = launch_argv(spec_, p, opt_.self_exe);
      std::ofstream(log) << "# " << shell_join(argv) << "\n";
      const auto t = std::chrono::steady_clock::now();
      const int rc = run_to_file(argv, log, {});  // launch sets its ranks' wait policy (shared_cores_env.hpp)
      st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
      spent = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const FinishCheck f = point_finished(spec_.run_dir(p), p.world());
      st.exit_code = rc;
      st.finished_at = now_iso();
      st.state = rc == 0 && f.finished ? "done" : "failed";
      st.note = rc != 0 ? "hpcinfer launch exited " + std::to_string(rc) + ": see " + log : f.why;
      save();
      const double eta = spent / double(i + 1) * double(todo.size() - i - 1);
      std::fprintf(stderr, "hpcinfer sweep: [%zu/%zu] %s: %s in %s (world %d); ETA %s\n", i + 1, todo.size(),
                   p.run_id.c_str(), st.state.c_str(), fmt_s(st.seconds).c_str(), p.world(), fmt_s(eta).c_str());
      if (st.state == "failed") {
        ++failed;
        std::fprintf(stderr, "  %s\n  end of %s:\n%s\n", st.note.c_str(), log.c_str(), tail_of(log, 600).c_str());
      }
    }
    std::fprintf(stderr, "hpcinfer sweep: %s: %zu run, %d failed, %s; index %s\n", spec_.experiment.c_str(),
                 todo.size(), failed, fmt_s(spent).c_str(), index_file_.c_str());
    return failed ? 1 : 0;
  }

  int submit_all(const std::vector<const SweepPoint*>& todo) {
    fs::create_directories("slurm_logs");  // Slurm does not create the --output directory
    int failed = 0;
    std::vector<const SweepPoint*> submitted;
    for (size_t i = 0; i < todo.size(); ++i) {
      const SweepPoint& p = *todo[i];
      clear_stale(p);
      auto& st = status_[p.run_id];
      const Captured c = run_capture(sbatch_argv(spec_, p, opt_));
      st.finished_at = now_iso();
      if (c.exit_code != 0) {
        st = PointStatus{"failed", c.exit_code, 0, "", now_iso(), "sbatch failed: " + c.output};
        ++failed;
      } else {
        st = PointStatus{"submitted", -1, 0, c.output.substr(0, c.output.find_first_of(";\n")), now_iso(), ""};
        submitted.push_back(&p);
      }
      save();
      std::fprintf(stderr, "hpcinfer sweep: [%zu/%zu] %s: %s%s\n", i + 1, todo.size(), p.run_id.c_str(),
                   st.state.c_str(), st.job_id.empty() ? (" " + st.note).c_str() : (" as job " + st.job_id).c_str());
    }
    submitted.insert(submitted.end(), queued_.begin(), queued_.end());  // --wait waits for those too
    if (submitted.empty()) {
      std::fprintf(stderr, "hpcinfer sweep: nothing to submit; index %s\n", index_file_.c_str());
      return 0;
    }
    if (!opt_.wait) {
      std::fprintf(stderr, "hpcinfer sweep: %zu job(s) submitted, %d failed, %zu still queued; run the sweep again (or "
                   "use --wait) to check them (finished points are kept); index %s\n", submitted.size() - queued_.size(),
                   failed, queued_.size(), index_file_.c_str());
      return failed ? 1 : 0;
    }
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t left = submitted.size(); left > 0;) {
      std::this_thread::sleep_for(std::chrono::duration<double>(opt_.poll_s));
      size_t now_left = 0;
      for (const auto* p : submitted) now_left += in_queue(status_[p->run_id].job_id) ? 1 : 0;
      if (now_left != left) {
        const double spent = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const size_t done = submitted.size() - now_left;
        std::fprintf(stderr, "hpcinfer sweep: [%zu/%zu] jobs left the queue after %s; ETA %s\n", done,
                     submitted.size(), fmt_s(spent).c_str(), fmt_s(spent / double(done) * double(now_left)).c_str());
      }
      left = now_left;
    }
    for (const auto* p : submitted) {
      auto& st = status_[p->run_id];
      const FinishCheck f = point_finished(spec_.run_dir(*p), p->world());
      st.state = f.finished ? "done" : "failed";
      st.note = f.finished ? "" : f.why + " (job " + st.job_id + ": see slurm_logs/" + spec_.experiment + "_" +
                                      st.job_id + ".out)";
      st.finished_at = now_iso();
      if (!f.finished) {
        ++failed;
        std::fprintf(stderr, "hpcinfer sweep: %s failed: %s\n", p->run_id.c_str(), st.note.c_str());
      }
    }
    save();
    std::fprintf(stderr, "hpcinfer sweep: %s: %zu job(s) done, %d failed; index %s\n", spec_.experiment.c_str(),
                 submitted.size(), failed, index_file_.c_str());
    return failed ? 1 : 0;
  }

  const SweepSpec& spec_;
  const SweepOptions& opt_;
  std::string index_file_;
  std::map<std::string, PointStatus> status_;
  std::vector<const SweepPoint*> queued_;  // --slurm: submitted earlier and still in the queue
};

}  // namespace

int run_sweep(const SweepSpec& spec, const SweepOptions& opt) { return Sweep(spec, opt).run(); }

}  // namespace hpcinfer::studies
