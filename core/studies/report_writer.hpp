// Writes a report directory: <name>.csv for every table with rows (runs.csv always), plots/*.png through
// scripts/plot_report.py (matplotlib) when it can run, and report.md with every table, its footnotes and the plots.
#pragma once

#include <string>
#include <vector>

#include "core/studies/study.hpp"

namespace hpcinfer::studies {

struct ReportOptions {
  std::string out_dir;
  std::string command_line;  // recorded in report.md
  std::string python = "python3";
  std::string plot_script;   // "" = no plots
};

struct ReportResult {
  std::vector<std::string> files;   // every file written (CSV, PNG, report.md)
  std::string plots_note;           // why there are no plots, when there are none
};

ReportResult write_report(const std::vector<Study>& studies, const ReportOptions& opt);

}  // namespace hpcinfer::studies
