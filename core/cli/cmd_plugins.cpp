// hpcinfer plugins [--path DIR]... [--json]: every plugin found on the search path, whether it is usable here, and
// every file that failed to load with the reason. Exit 0 even when some failed (listing them is the point).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "core/cli/commands.hpp"
#include "core/plugin/plugin_registry.hpp"

namespace hpcinfer::cli {

namespace {

std::string usable_text(const PluginEntry& e) {
  if (!e.usable) return "no: " + e.why;
  if (!e.shadowed_by.empty()) return "yes (shadowed by " + e.shadowed_by + ")";
  return "yes";
}

void print_table(const PluginRegistry& reg, const std::vector<PluginEntry>& entries) {
  std::vector<std::vector<std::string>> rows = {{"KIND", "NAME", "VERSION", "ABI", "USABLE", "PATH"}};
  for (const auto& e : entries)
    if (e.loaded) rows.push_back({e.kind, e.name, e.version, std::to_string(e.abi), usable_text(e), e.path});
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  if (rows.size() == 1) std::printf("no plugins found\n");
  else
    for (const auto& r : rows) {
      std::string line;
      for (size_t i = 0; i < r.size(); ++i)
        line += r[i] + (i + 1 < r.size() ? std::string(width[i] - r[i].size() + 2, ' ') : "");
      std::printf("%s\n", line.c_str());
    }
  size_t failed = std::count_if(entries.begin(), entries.end(), [](const PluginEntry& e) { return !e.loaded; });
  if (failed) {
    std::printf("\nfailed to load (%zu):\n", failed);
    for (const auto& e : entries)
      if (!e.loaded) std::printf("  %s\n", e.error.c_str());
  }
  std::printf("\nsearch path (earlier wins):\n");
  for (const auto& d : reg.dirs())
    std::printf("  %s%s\n", d.c_str(), std::filesystem::exists(d) ? "" : "  (missing)");
}

nlohmann::json to_json(const PluginRegistry& reg, const std::vector<PluginEntry>& entries) {
  nlohmann::json j;
  j["abi"] = kPluginAbiVersion;
  j["search_path"] = nlohmann::json::array();
  for (const auto& d : reg.dirs()) j["search_path"].push_back({{"dir", d}, {"exists", std::filesystem::exists(d)}});
  j["plugins"] = nlohmann::json::array();
  for (const auto& e : entries)
    j["plugins"].push_back({{"path", e.path},
                            {"loaded", e.loaded},
                            {"error", e.error},
                            {"kind", e.kind},
                            {"name", e.name},
                            {"version", e.version},
                            {"abi", e.abi},
                            {"description", e.description},
                            {"usable", e.usable},
                            {"why", e.why},
                            {"shadowed_by", e.shadowed_by}});
  return j;
}

}  // namespace

int cmd_plugins(const Args& args) {
  CLI::App app{"List every plugin found on the search path: --path dirs, then $HPCINFER_PLUGIN_PATH, then "
               "<binary>/../lib/hpcinfer. Earlier directories win.",
               "hpcinfer plugins"};
  std::vector<std::string> paths;
  bool json = false;
  app.add_option("--path", paths, "extra plugin directory or .so file, searched first (repeatable)");
  app.add_flag("--json", json, "machine-readable output");
  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes a vector in reverse order
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  PluginRegistry reg(PluginRegistry::search_path(paths));
  std::vector<PluginEntry> entries = PluginRegistry::builtins();  // the built-in cpu backend first
  for (const PluginEntry& e : reg.scan()) entries.push_back(e);
  if (json) std::cout << to_json(reg, entries).dump(2) << "\n";
  else print_table(reg, entries);
  return 0;
}

}  // namespace hpcinfer::cli
