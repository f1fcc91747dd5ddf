// A table of a report: written as markdown (for people) and CSV (for scripts/plot_report.py and spreadsheets).
#pragma once

#include <string>
#include <vector>

namespace hpcinfer::studies {

struct Table {
  std::string name;   // file stem: scaling, sensitivity, ab, correctness, runs
  std::string title;  // markdown heading
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> notes;  // footnotes under the markdown table: definitions and raw sources

  void add(std::vector<std::string> row) { rows.push_back(std::move(row)); }
};

// Markdown shortens non-integer numeric cells to 4 significant digits; the CSV keeps them as they are.
std::string to_markdown(const Table& t, bool heading = true);  // heading: "### title" first
std::string to_csv(const Table& t);  // RFC 4180: header line, then one line per row

// A number as written into a cell: "%.6g"; NaN is "" (no value).
std::string num_csv(double v);

}  // namespace hpcinfer::studies
