#include "core/studies/report_writer.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/studies/child_process.hpp"
#include "core/studies/report_tables.hpp"
#include "core/studies/sweep_index.hpp"

namespace hpcinfer::studies {
namespace {
namespace fs = std::filesystem;

// Exit status of scripts/plot_report.py when matplotlib cannot be imported.
constexpr int kNoMatplotlib = 3;

void write_file(const fs::path& p, const std::string& text, ReportResult& res) {
  std::ofstream out(p, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + p.string());
  res.files.push_back(p.string());
}

// Runs the plot script; returns the PNG files it wrote (one per output line "wrote FILE").
std::vector<std::string> plot(const ReportOptions& opt, ReportResult& res) {
  if (opt.plot_script.empty()) {
    res.plots_note = "plots not drawn: scripts/plot_report.py not found (give --plot-script)";
    return {};
  }
  const Captured c = run_capture({opt.python, opt.plot_script, opt.out_dir});
  std::vector<std::string> pngs;
  std::istringstream lines(c.output);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("wrote ", 0) == 0) pngs.push_back(line.substr(6));
  if (c.exit_code == kNoMatplotlib)
    res.plots_note = "plots not drawn: matplotlib is not importable by " + opt.python +
                     " (bash scripts/setup_report.sh installs it); the CSV files hold every plotted number";
  else if (c.exit_code != 0)
    res.plots_note = "plots failed (" + opt.python + " " + opt.plot_script + " exited " + std::to_string(c.exit_code) +
                     "): " + c.output.substr(0, 600);
  for (const auto& p : pngs) res.files.push_back(p);
  return pngs;
}

}  // namespace

ReportResult write_report(const std::vector<Study>& studies, const ReportOptions& opt) {
  ReportResult res;
  const fs::path out(opt.out_dir);
  fs::create_directories(out);
  for (const char* stale : {"scaling.csv", "sensitivity.csv", "ab.csv", "correctness.csv"}) fs::remove(out / stale);
  fs::remove_all(out / "plots");

  const std::vector<Table> tables{runs_table(studies), scaling_table(studies), sensitivity_table(studies),
                                  ab_table(studies), correctness_table(studies)};
  for (const auto& t : tables)
    if (!t.rows.empty() || t.name == "runs") write_file(out / (t.name + ".csv"), to_csv(t), res);
  const std::vector<std::string> pngs = plot(opt, res);

  std::string md = "# hpcinfer report\n\n";
  md += "Written " + now_iso() + " by `" + opt.command_line + "`.\n\n";
  md += "Every number below comes from the raw files named in its row's `source` column (or the runs table's); the "
        "same tables are in the CSV files beside this one.\n\n## Studies\n\n| study | kind | runs | from |\n|---|---|---|---|\n";
  for (const auto& s : studies)
    md += "| " + s.name + " | " + s.kind + " | " + std::to_string(s.runs.size()) + " | " + s.source + " |\n";
  md += "\n";
  // The summary tables first, the long runs table last.
  for (size_t i = 1; i < tables.size(); ++i)
    if (!tables[i].rows.empty()) md += "## " + tables[i].title + "\n\n" + to_markdown(tables[i], false);
  md += "## Plots\n\n";
  if (pngs.empty()) md += res.plots_note.empty() ? "(no plot applies to these studies)\n\n" : res.plots_note + "\n\n";
  for (const auto& p : pngs) {
    const std::string rel = fs::relative(p, out).string();
    md += "![" + rel + "](" + rel + ")\n\n";
  }
  md += "## " + tables[0].title + "\n\n" + to_markdown(tables[0], false);
  bool any_skipped = false;
  for (const auto& s : studies)
    for (const auto& k : s.skipped) {
      if (!any_skipped) md += "## Runs left out\n\n";
      any_skipped = true;
      md += "- " + s.name + ": " + k + "\n";
    }
  write_file(out / "report.md", md, res);
  return res;
}

}  // namespace hpcinfer::studies
