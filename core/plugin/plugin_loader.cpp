#include "core/plugin/plugin_loader.hpp"

#include <boost/dll/shared_library.hpp>

#include "core/plugin/elf_check.hpp"

#include <map>
#include <mutex>

namespace hpcinfer::plugin_detail {

namespace {

using DescriptorFn = const PluginInfo*();

// Every library ever loaded, leaked on purpose: plugin objects (vtables) must outlive any registry.
struct LoadedLibraries {
  std::mutex mutex;
  std::map<std::string, PluginEntry> by_path;
  std::vector<boost::dll::shared_library*> libraries;
};
LoadedLibraries& loaded() {
  static auto* all = new LoadedLibraries;  // never destroyed
  return *all;
}

// The dynamic loader's own words out of Boost.DLL's "load() failed (dlerror system message: X): Bad file ...".
std::string loader_message(const std::string& what) {
  const std::string tag = "(dlerror system message: ";
  auto b = what.find(tag);
  auto e = what.rfind(')');
  if (b == std::string::npos || e == std::string::npos || e < b + tag.size()) return what;
  return what.substr(b + tag.size(), e - b - tag.size());
}

bool valid_kind(PluginKind k) {
  return k == PluginKind::comm || k == PluginKind::weights || k == PluginKind::strategy || k == PluginKind::backend;
}

// `opened` says whether dlopen succeeded (then the library stays loaded and the entry is cached).
PluginEntry load_uncached(const std::string& path, bool& opened) {
  opened = false;
  PluginEntry e;
  e.path = path;
  if (std::string bad = elf_layout_problem(path); !bad.empty()) {
    e.error = "cannot load " + path + ": " + bad;
    return e;
  }
  auto* lib = new boost::dll::shared_library;
  try {
    lib->load(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& ex) {
    delete lib;
    e.error = "cannot load " + path + ": " + loader_message(ex.what());
    return e;
  }
  loaded().libraries.push_back(lib);  // kept for the process lifetime
  opened = true;
  if (!lib->has(HPCINFER_PLUGIN_SYMBOL)) {
    e.error = path + " is not an hpcinfer plugin: it does not export '" HPCINFER_PLUGIN_SYMBOL "'";
    return e;
  }
  const PluginInfo* info = lib->get<DescriptorFn>(HPCINFER_PLUGIN_SYMBOL)();
  if (!info) {
    e.error = path + ": " HPCINFER_PLUGIN_SYMBOL "() returned no descriptor";
    return e;
  }
  // The ABI version first: with another ABI, no other field can be trusted.
  e.abi = info->abi_version;
  if (info->abi_version != kPluginAbiVersion) {
    e.error = "plugin " + path + " has ABI version " + std::to_string(info->abi_version) + ", this hpcinfer has " +
              std::to_string(kPluginAbiVersion) + " (rebuild the plugin against this hpcinfer's headers)";
    return e;
  }
  if (!valid_kind(info->kind) || !info->name || !*info->name || !info->create) {
    e.error = path + ": malformed plugin descriptor (unknown kind " + std::to_string(uint32_t(info->kind)) +
              ", or no name, or no create function)";
    return e;
  }
  e.info = info;
  e.loaded = true;
  e.kind = plugin_kind_name(info->kind);
  e.name = info->name;
  e.version = info->version ? info->version : "";
  e.description = info->description ? info->description : "";
  e.usable = true;
  if (info->probe) {
    try {
      ProbeResult r = info->probe();
      e.usable = r.usable;
      e.why = r.usable ? "" : (r.why.empty() ? "probe() said unusable, without a reason" : r.why);
    } catch (const std::exception& ex) {
      e.usable = false;
      e.why = std::string("probe() failed: ") + ex.what();
    }
  }
  return e;
}

}  // namespace

PluginEntry load_plugin_file(const std::string& path) {
  auto& all = loaded();
  std::lock_guard<std::mutex> lock(all.mutex);
  auto it = all.by_path.find(path);
  if (it != all.by_path.end()) return it->second;
  bool opened = false;
  PluginEntry e = load_uncached(path, opened);
  if (opened) all.by_path[path] = e;  // files dlopen refused are retried: they may be fixed meanwhile
  return e;
}

}  // namespace hpcinfer::plugin_detail
