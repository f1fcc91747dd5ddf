#include "core/studies/table.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace hpcinfer::studies {
namespace {

std::string csv_cell(const std::string& v) {
  if (v.find_first_of(",\"\n") == std::string::npos) return v;
  std::string q = "\"";
  for (char c : v) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// Non-integer numbers are shortened in markdown: 4 significant digits, no decimals from 1000 up (the CSV keeps 6).
std::string shorten(const std::string& v) {
  if (v.empty() || v.find_first_of(".eE") == std::string::npos) return v;
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (end != v.c_str() + v.size() || std::isnan(d) || std::isinf(d)) return v;
  char b[64];
  if (std::abs(d) >= 1000)
    std::snprintf(b, sizeof b, "%.0f", d);
  else
    std::snprintf(b, sizeof b, "%.4g", d);
  return b;
}

std::string md_cell(const std::string& raw) {
  const std::string v = shorten(raw);
  std::string out;
  for (char c : v) out += c == '|' ? std::string("\\|") : c == '\n' ? std::string(" ") : std::string(1, c);
  return out.empty() ? "-" : out;
}

std::string fmt(double v, const char* f) {
  if (std::isnan(v)) return "";
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

}  // namespace

std::string num_csv(double v) { return fmt(v, "%.6g"); }

std::string to_markdown(const Table& t, bool heading) {
  std::string s = heading ? "### " + t.title + "\n\n|" : "|";
  for (const auto& c : t.columns) s += " " + md_cell(c) + " |";
  s += "\n|";
  for (size_t i = 0; i < t.columns.size(); ++i) s += "---|";
  s += "\n";
  for (const auto& r : t.rows) {
    s += "|";
    for (size_t i = 0; i < t.columns.size(); ++i) s += " " + md_cell(i < r.size() ? r[i] : "") + " |";
    s += "\n";
  }
  if (t.rows.empty()) s += "\n(no rows)\n";
  if (!t.notes.empty()) s += "\n";
  for (const auto& n : t.notes) s += "- " + n + "\n";
  return s + "\n";
}

std::string to_csv(const Table& t) {
  std::string s;
  for (size_t i = 0; i < t.columns.size(); ++i) s += (i ? "," : "") + csv_cell(t.columns[i]);
  s += "\n";
  for (const auto& r : t.rows) {
    for (size_t i = 0; i < t.columns.size(); ++i) s += (i ? "," : "") + csv_cell(i < r.size() ? r[i] : "");
    s += "\n";
  }
  return s;
}

}  // namespace hpcinfer::studies
