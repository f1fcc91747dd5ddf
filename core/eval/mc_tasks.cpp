#include "core/eval/mc_tasks.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "core/eval/text_file.hpp"

namespace hpcinfer::eval {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

int parse_label(const std::string& text, int n_choices, const std::string& where) {
  const std::string t = trim(text);
  if (t.size() != 1 || t[0] < '0' || t[0] >= char('0' + n_choices))
    throw std::runtime_error(where + ": expected a label 0.." + std::to_string(n_choices - 1) + ", got '" + t + "'");
  return t[0] - '0';
}

bool done(const std::vector<McItem>& items, int limit) { return limit > 0 && int(items.size()) >= limit; }

}  // namespace

std::vector<McItem> load_piqa(const std::string& jsonl_path, const std::string& labels_path, int limit) {
  const std::vector<std::string> rows = lines_of(read_text_file(jsonl_path));
  const std::vector<std::string> labels = lines_of(read_text_file(labels_path));
  std::vector<McItem> items;
  for (size_t i = 0; i < rows.size() && !done(items, limit); ++i) {
    const std::string where = jsonl_path + ":" + std::to_string(i + 1);
    if (trim(rows[i]).empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(rows[i]);
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(where + ": not JSON: " + e.what());
    }
    for (const char* k : {"goal", "sol1", "sol2"})
      if (!j.contains(k) || !j[k].is_string()) throw std::runtime_error(where + ": no string field \"" + k + "\"");
    if (i >= labels.size())
      throw std::runtime_error(labels_path + ": has " + std::to_string(labels.size()) + " labels, " + jsonl_path +
                               " more items");
    McItem it;
    it.context = "Question: " + j["goal"].get<std::string>() + "\nAnswer:";
    it.endings = {" " + j["sol1"].get<std::string>(), " " + j["sol2"].get<std::string>()};
    it.gold = parse_label(labels[i], 2, labels_path + ":" + std::to_string(i + 1));
    items.push_back(std::move(it));
  }
  if (items.empty()) throw std::runtime_error(jsonl_path + ": no items");
  return items;
}

std::vector<McItem> load_hellaswag(const std::string& path, int limit) {
  const std::vector<std::string> lines = lines_of(read_text_file(path));
  std::vector<McItem> items;
  for (size_t i = 0; i + 6 <= lines.size() && !done(items, limit); i += 6) {
    McItem it;
    it.context = lines[i];
    it.gold = parse_label(lines[i + 1], 4, path + ":" + std::to_string(i + 2));
    for (size_t e = 0; e < 4; ++e) it.endings.push_back(" " + lines[i + 2 + e]);
    items.push_back(std::move(it));
  }
  const size_t whole = lines.size() / 6 * 6;
  if (!done(items, limit) && whole != lines.size() && !(whole + 1 == lines.size() && trim(lines.back()).empty()))
    throw std::runtime_error(path + ": " + std::to_string(lines.size()) + " lines, not 6 per item");
  if (items.empty()) throw std::runtime_error(path + ": no items");
  return items;
}

}  // namespace hpcinfer::eval
