#include "core/plugin/plugin_registry.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "core/backend/cpu_backend.hpp"
#include "core/config/load_config.hpp"
#include "core/plugin/plugin_loader.hpp"

namespace fs = std::filesystem;

namespace hpcinfer {

namespace {

std::vector<std::string> split_colons(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(':', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// *.so files of a directory, sorted by name so discovery is deterministic; a .so path stands for itself.
std::vector<std::string> plugin_files(const std::string& dir_or_file) {
  std::vector<std::string> out;
  std::error_code ec;
  if (fs::is_regular_file(dir_or_file, ec)) return {dir_or_file};
  if (!fs::is_directory(dir_or_file, ec)) return out;
  for (const auto& de : fs::directory_iterator(dir_or_file, ec)) {
    if (de.path().extension() != ".so") continue;
    if (!de.is_regular_file(ec) && !de.is_symlink(ec)) continue;
    out.push_back(de.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string list_found(const std::vector<PluginEntry>& entries, PluginKind kind) {
  std::string out;
  for (const auto& e : entries)
    if (e.loaded && e.kind == plugin_kind_name(kind) && e.shadowed_by.empty())
      out += (out.empty() ? "" : ", ") + e.name + " (" + e.path + ")";
  return out.empty() ? "none" : out;
}

}  // namespace

PluginRegistry::PluginRegistry(std::vector<std::string> dirs) : dirs_(std::move(dirs)) {}

std::string PluginRegistry::default_plugin_dir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec || exe.empty()) return "";
  return (exe.parent_path().parent_path() / "lib" / "hpcinfer").lexically_normal().string();
}

std::vector<std::string> PluginRegistry::search_path(const std::vector<std::string>& first) {
  std::vector<std::string> all = first;
  if (const char* env = std::getenv("HPCINFER_PLUGIN_PATH"))
    for (auto& d : split_colons(env)) all.push_back(d);
  std::string def = default_plugin_dir();
  if (!def.empty()) all.push_back(def);
  // Remove repeats of the same place (by canonical path when it exists), keeping the first.
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& d : all) {
    std::error_code ec;
    fs::path canon = fs::weakly_canonical(d, ec);
    std::string key = ec ? d : canon.string();
    if (seen.insert(key).second) out.push_back(d);
  }
  return out;
}

PluginRegistry PluginRegistry::for_config(const ExperimentConfig& config) {
  return PluginRegistry(search_path(config.plugin_path));
}

const std::vector<PluginEntry>& PluginRegistry::scan() {
  if (scanned_) return entries_;
  scanned_ = true;
  std::set<std::string> seen_files;
  for (const auto& dir : dirs_) {
    for (const auto& file : plugin_files(dir)) {
      std::error_code ec;
      fs::path canon = fs::weakly_canonical(file, ec);
      if (!seen_files.insert(ec ? file : canon.string()).second) continue;
      PluginEntry e = plugin_detail::load_plugin_file(file);
      if (e.loaded)
        for (const auto& earlier : entries_)
          if (earlier.loaded && earlier.shadowed_by.empty() && earlier.kind == e.kind && earlier.name == e.name) {
            e.shadowed_by = earlier.path;
            break;
          }
      entries_.push_back(std::move(e));
    }
  }
  return entries_;
}

const std::vector<PluginEntry>& PluginRegistry::builtins() {
  static const std::vector<PluginEntry> kBuiltins = [] {
    std::vector<PluginEntry> out;
    for (const PluginInfo* info : {&cpu_backend_plugin_info()}) {
      PluginEntry e;
      e.path = "built in";
      e.loaded = true;
      e.kind = plugin_kind_name(info->kind);
      e.name = info->name;
      e.version = info->version;
      e.abi = info->abi_version;
      e.description = info->description;
      e.usable = true;
      e.info = info;
      out.push_back(e);
    }
    return out;
  }();
  return kBuiltins;
}

const PluginEntry* PluginRegistry::find(PluginKind kind, const std::string& name) {
  for (const auto& e : builtins())
    if (e.kind == plugin_kind_name(kind) && e.name == name) return &e;
  for (const auto& e : scan())
    if (e.loaded && e.shadowed_by.empty() && e.kind == plugin_kind_name(kind) && e.name == name) return &e;
  return nullptr;
}

std::string PluginRegistry::problem(PluginKind kind, const std::string& name) {
  const std::string k = plugin_kind_name(kind);
  if (const PluginEntry* e = find(kind, name)) {
    if (e->usable) return "";
    return k + " plugin '" + name + "' (" + e->path + ") is not usable here: " + e->why;
  }
  std::string found = list_found(builtins(), kind), files = list_found(scan(), kind);
  if (found == "none" || files != "none") found = found == "none" ? files : found + ", " + files;
  std::string msg = "unknown " + k + " plugin '" + name + "'; found: " + found;
  // Files that did not load might have been it: the one whose file name mentions `name` first.
  std::vector<const PluginEntry*> failed;
  for (const auto& e : entries_)
    if (!e.loaded) failed.push_back(&e);
  std::stable_partition(failed.begin(), failed.end(), [&](const PluginEntry* e) {
    return fs::path(e->path).filename().string().find(name) != std::string::npos;
  });
  if (!failed.empty()) {
    msg += "; could not load:";
    for (const auto* e : failed) msg += " [" + e->error + "]";
  }
  std::string searched;
  for (const auto& d : dirs_) searched += (searched.empty() ? "" : ":") + d;
  msg += " (searched " + (searched.empty() ? std::string("nothing") : searched) +
         "; add directories with plugin_path in the YAML or HPCINFER_PLUGIN_PATH)";
  return msg;
}

void* PluginRegistry::create(PluginKind kind, const std::string& name) {
  std::string why = problem(kind, name);
  if (!why.empty()) throw PluginError(why);
  const PluginEntry* e = find(kind, name);
  void* obj = nullptr;
  try {
    obj = e->info->create();
  } catch (const std::exception& ex) {
    throw PluginError(std::string(plugin_kind_name(kind)) + " plugin '" + name + "' (" + e->path +
                      "): create() failed: " + ex.what());
  }
  if (!obj)
    throw PluginError(std::string(plugin_kind_name(kind)) + " plugin '" + name + "' (" + e->path +
                      "): create() returned null");
  return obj;
}

std::unique_ptr<Communicator> PluginRegistry::create_comm(const std::string& name) {
  return std::unique_ptr<Communicator>(static_cast<Communicator*>(create(PluginKind::comm, name)));
}
std::unique_ptr<WeightFormat> PluginRegistry::create_weights(const std::string& name) {
  return std::unique_ptr<WeightFormat>(static_cast<WeightFormat*>(create(PluginKind::weights, name)));
}
std::unique_ptr<Strategy> PluginRegistry::create_strategy(const std::string& name) {
  return std::unique_ptr<Strategy>(static_cast<Strategy*>(create(PluginKind::strategy, name)));
}
std::unique_ptr<Backend> PluginRegistry::create_backend(const std::string& name) {
  return std::unique_ptr<Backend>(static_cast<Backend*>(create(PluginKind::backend, name)));
}

void validate_plugin_names(const ExperimentConfig& config, PluginRegistry& registry) {
  struct Named {
    PluginKind kind;
    const char* key;
    const std::string& name;
  } named[] = {{PluginKind::comm, "plugins.comm", config.plugins.comm},
               {PluginKind::weights, "plugins.weights", config.plugins.weights},
               {PluginKind::strategy, "plugins.strategy", config.plugins.strategy},
               {PluginKind::backend, "device", config.device}};
  for (const auto& n : named) {
    if (n.kind == PluginKind::weights && n.name == "auto") continue;
    std::string why = registry.problem(n.kind, n.name);
    if (!why.empty()) throw ConfigError(config_message(config, n.key, why));
  }
}

void validate_plugin_names(const ExperimentConfig& config) {
  PluginRegistry registry = PluginRegistry::for_config(config);
  validate_plugin_names(config, registry);
}

}  // namespace hpcinfer
