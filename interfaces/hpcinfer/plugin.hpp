// hpcinfer plugin ABI: the one symbol every plugin shared object exports.
//
// Contract
// - A plugin .so exports exactly one `extern "C"` function, HPCINFER_PLUGIN_SYMBOL, returning a pointer to a static
//   PluginInfo. The core reads `abi_version` FIRST and refuses the plugin (naming both versions) if it differs from
//   kPluginAbiVersion; only then does it look at any other field.
// - `create()` returns a new object of the kind-specific interface (Communicator, WeightFormat, Strategy, Backend), owned by
//   the caller, who deletes it through the interface's virtual destructor BEFORE the library is unloaded (the core
//   never unloads plugins).
// - `probe()` says whether the plugin can work on this host (e.g. nccl without a GPU: usable = false, with why).
// - Errors cross the boundary only as std::exception subclasses from the standard library (std::runtime_error,
//   std::invalid_argument): their type info is shared by every module, ours would not be (hidden visibility).
// - No global state with side effects in static initializers; no exit() in plugin code.
#pragma once

#include <cstdint>
#include <string>

namespace hpcinfer {

// Bump when any interface header in interfaces/hpcinfer changes in a way that breaks binary compatibility.
inline constexpr uint32_t kPluginAbiVersion = 4;  // 2: backends, packing for a backend, plans as data;
                                                  // 3: device memory stats, ranges, host staging, device matmuls;
                                                  // 4: packed images (image, image_key, adopt)

enum class PluginKind : uint32_t { comm = 1, weights = 2, strategy = 3, backend = 4 };

inline const char* plugin_kind_name(PluginKind k) {
  switch (k) {
    case PluginKind::comm: return "comm";
    case PluginKind::weights: return "weights";
    case PluginKind::strategy: return "strategy";
    case PluginKind::backend: return "backend";
  }
  return "unknown";
}

struct ProbeResult {
  bool usable = true;
  std::string why;  // empty when usable; otherwise a sentence a user can act on
};

struct PluginInfo {
  uint32_t abi_version;      // must equal kPluginAbiVersion: checked before anything else
  PluginKind kind;           // which interface create() returns
  const char* name;          // e.g. "gloo", "bf16", "pp": what YAML's plugins.<kind> names
  const char* version;       // the plugin's own semantic version
  const char* description;   // one line for `hpcinfer plugins`
  void* (*create)();         // new object of the kind's interface (cast by the core), caller owns it
  ProbeResult (*probe)();    // may be nullptr: usable everywhere
};

}  // namespace hpcinfer

#define HPCINFER_PLUGIN_SYMBOL "hpcinfer_plugin"

// Use once per plugin: HPCINFER_EXPORT_PLUGIN(info) where `info` is a static PluginInfo.
#define HPCINFER_EXPORT_PLUGIN(info) \
  extern "C" __attribute__((visibility("default"))) const ::hpcinfer::PluginInfo* hpcinfer_plugin() { return &(info); }
