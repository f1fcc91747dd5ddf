// PluginRegistry: finds plugin shared objects, loads them with Boost.DLL, checks their ABI, and creates the
// Communicator / WeightFormat / Strategy / Backend that an experiment names. The "cpu" backend is built in.
//
// Discovery order (earlier wins when two plugins have the same kind and name):
//   1. the config's plugin_path entries (directories, or single .so files)
//   2. $HPCINFER_PLUGIN_PATH, colon-separated
//   3. <directory of the running binary>/../lib/hpcinfer (build/bin -> build/lib/hpcinfer, prefix/bin ->
//      prefix/lib/hpcinfer), found through /proc/self/exe
// Every *.so in those directories is loaded (RTLD_NOW | RTLD_LOCAL) and asked for `hpcinfer_plugin`; its
// abi_version is checked before any other field is read. Loaded libraries stay loaded for the life of the process
// (never unloaded: objects they created may outlive the registry), and a path is loaded at most once per process.
//
// create() contract for plugin authors: the void* that PluginInfo::create returns must point at the interface
// itself, i.e. `return static_cast<hpcinfer::Communicator*>(new MyComm);` (a static_cast to the interface first).
// Threading: one registry is used by one thread; separate registries may be used concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/config/experiment_config.hpp"
#include "hpcinfer/backend.hpp"
#include "hpcinfer/communicator.hpp"
#include "hpcinfer/plugin.hpp"
#include "hpcinfer/strategy.hpp"
#include "hpcinfer/weight_format.hpp"

namespace hpcinfer {

class PluginError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What the registry learned about one file.
struct PluginEntry {
  std::string path;         // the .so
  bool loaded = false;      // loaded, exported hpcinfer_plugin, ABI matched, descriptor sane
  std::string error;        // why not, when !loaded (names the path)
  std::string kind;         // comm | weights | strategy ("" when not loaded)
  std::string name;
  std::string version;
  uint32_t abi = 0;         // the plugin's abi_version (0 when the symbol was never reached)
  std::string description;
  bool usable = false;      // probe() said yes (false when not loaded)
  std::string why;          // probe()'s reason when not usable
  std::string shadowed_by;  // path of an earlier plugin with the same kind and name, which wins
  const PluginInfo* info = nullptr;  // valid for the process lifetime when loaded
};

class PluginRegistry {
 public:
  // Searches exactly `dirs` (directories or .so files), in order. Missing directories are skipped.
  explicit PluginRegistry(std::vector<std::string> dirs);
  // The standard search path (see above) for a configuration.
  static PluginRegistry for_config(const ExperimentConfig& config);
  // config plugin_path entries + $HPCINFER_PLUGIN_PATH + <exe>/../lib/hpcinfer, duplicates removed.
  static std::vector<std::string> search_path(const std::vector<std::string>& first);
  // <directory of /proc/self/exe>/../lib/hpcinfer, normalized ("" if /proc/self/exe is unreadable).
  static std::string default_plugin_dir();

  const std::vector<std::string>& dirs() const { return dirs_; }

  // Loads every plugin on the search path (once; later calls return the same entries), in discovery order.
  const std::vector<PluginEntry>& scan();

  // The plugins compiled into the core (the "cpu" backend): found before any file, listed by `hpcinfer plugins`.
  static const std::vector<PluginEntry>& builtins();

  // The winning entry of that kind and name (built in, else loaded from a file), or nullptr.
  const PluginEntry* find(PluginKind kind, const std::string& name);

  // New objects from the plugin named `name`. Throw PluginError: unknown name (listing what was found and what
  // failed to load), the plugin is not usable here (probe()'s reason), or create() failed.
  std::unique_ptr<Communicator> create_comm(const std::string& name);
  std::unique_ptr<WeightFormat> create_weights(const std::string& name);
  std::unique_ptr<Strategy> create_strategy(const std::string& name);
  std::unique_ptr<Backend> create_backend(const std::string& name);  // `device:`

  // The PluginError message create_*() would give for `name`, or "" when it would succeed (no object created).
  std::string problem(PluginKind kind, const std::string& name);

 private:
  void* create(PluginKind kind, const std::string& name);

  std::vector<std::string> dirs_;
  std::vector<PluginEntry> entries_;
  bool scanned_ = false;
};

// Throws ConfigError naming FILE:LINE of plugins.<kind> (or device) when the comm, weights (unless "auto"), strategy
// or backend plugin the configuration names is not found or not usable, so `hpcinfer run` can exit 2 before any work.
void validate_plugin_names(const ExperimentConfig& config);
void validate_plugin_names(const ExperimentConfig& config, PluginRegistry& registry);

}  // namespace hpcinfer
