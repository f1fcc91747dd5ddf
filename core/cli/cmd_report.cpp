// hpcinfer report DIR... [--out DIR]: tables (markdown + CSV) and PNG plots from runs (core/studies/).
#include <filesystem>

#include "core/cli/cli_util.hpp"
#include "core/studies/report_writer.hpp"

namespace hpcinfer::cli {
namespace {
namespace fs = std::filesystem;

// scripts/plot_report.py: beside an installed binary (share/hpcinfer), in the source tree above build/bin, or under
// the working directory.
std::string find_plot_script() {
  const fs::path exe_dir = fs::read_symlink("/proc/self/exe").parent_path();
  for (const fs::path& p : {exe_dir / "../share/hpcinfer/plot_report.py", exe_dir / "../../scripts/plot_report.py",
                            fs::path("scripts/plot_report.py")})
    if (fs::exists(p)) return fs::weakly_canonical(p).string();
  return "";
}

}  // namespace

int cmd_report(const Args& args) {
  CLI::App app{
      "Turn runs into tables (markdown + CSV) and PNG plots: speedup and efficiency against world size (strong and "
      "weak scaling), the sensitivity curves, the A/B delta and the correctness table. DIR: a sweep's experiment "
      "directory (with sweep.json), one run directory, or a directory of run directories.",
      "hpcinfer report"};
  std::vector<std::string> dirs;
  studies::ReportOptions opt;
  bool no_plots = false;
  app.add_option("dirs", dirs, "results directories")->required();
  app.add_option("--out", opt.out_dir, "report directory (default: DIR/report for one DIR, else report)");
  app.add_option("--python", opt.python, "the Python that draws the plots (needs matplotlib)")->capture_default_str();
  app.add_option("--plot-script", opt.plot_script, "default: scripts/plot_report.py of this source tree");
  app.add_flag("--no-plots", no_plots, "tables only");
  if (auto rc = parse_args(app, args)) return *rc;
  if (opt.out_dir.empty()) opt.out_dir = dirs.size() == 1 ? (fs::path(dirs[0]) / "report").string() : "report";
  if (no_plots)
    opt.plot_script.clear();
  else if (opt.plot_script.empty())
    opt.plot_script = find_plot_script();
  opt.command_line = "hpcinfer report";
  for (const auto& a : args) opt.command_line += " " + a;

  std::vector<studies::Study> found;
  try {
    found = studies::collect_studies(dirs);
  } catch (const std::runtime_error& e) {
    std::fprintf(stderr, "hpcinfer report: %s\n", e.what());
    return 2;
  }
  size_t runs = 0, skipped = 0;
  for (const auto& s : found) {
    runs += s.runs.size();
    skipped += s.skipped.size();
    for (const auto& k : s.skipped) std::fprintf(stderr, "hpcinfer report: %s: left out %s\n", s.name.c_str(), k.c_str());
  }
  if (runs == 0) {
    std::fprintf(stderr, "hpcinfer report: no finished run in %zu director%s\n", dirs.size(), dirs.size() == 1 ? "y" : "ies");
    return 1;
  }
  const studies::ReportResult res = studies::write_report(found, opt);
  if (!res.plots_note.empty() && !no_plots) std::fprintf(stderr, "hpcinfer report: %s\n", res.plots_note.c_str());
  std::fprintf(stderr, "hpcinfer report: %zu stud%s, %zu runs (%zu left out) -> %s/report.md (%zu files)\n",
               found.size(), found.size() == 1 ? "y" : "ies", runs, skipped, opt.out_dir.c_str(), res.files.size());
  for (const auto& f : res.files) std::printf("%s\n", f.c_str());
  return 0;
}

}  // namespace hpcinfer::cli
