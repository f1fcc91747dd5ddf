// hpcinfer sweep SWEEP.yaml [--slurm [--wait]] [--dry-run]: runs every point of a sweep (core/studies/).
#include <filesystem>

#include "core/cli/cli_util.hpp"
#include "core/config/config_error.hpp"
#include "core/studies/sweep_runner.hpp"

namespace hpcinfer::cli {

int cmd_sweep(const Args& args) {
  CLI::App app{
      "Run a grid of experiments: every point of SWEEP.yaml (a base config, grid/zip/vary/points of --set "
      "overrides, repeats) into <output_root>/<experiment>/<run_id>/, with an index in sweep.json. Finished points "
      "(metrics for every rank and all completions on disk) are not run again: re-running resumes a sweep.",
      "hpcinfer sweep"};
  std::string file;
  studies::SweepOptions opt;
  app.add_option("sweep", file, "sweep YAML (configs/experiments/*.yaml)")->required();
  app.add_flag("--slurm", opt.slurm, "submit one job per point through slurm/submit.sbatch instead of running locally");
  app.add_flag("--wait", opt.wait, "with --slurm: wait until the jobs have left the queue, then check their results");
  app.add_flag("--dry-run", opt.dry_run, "list the points, whether each is finished, and its command; run nothing");
  app.add_option("--submit-script", opt.submit_script, "the batch script for --slurm")->capture_default_str();
  if (auto rc = parse_args(app, args)) return *rc;
  if (opt.wait && !opt.slurm) {
    std::fprintf(stderr, "hpcinfer sweep: --wait goes with --slurm (a local sweep always waits)\n");
    return 2;
  }
  opt.self_exe = std::filesystem::read_symlink("/proc/self/exe").string();
  studies::SweepSpec spec;
  try {
    spec = studies::load_sweep(file);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  return studies::run_sweep(spec, opt);
}

}  // namespace hpcinfer::cli
