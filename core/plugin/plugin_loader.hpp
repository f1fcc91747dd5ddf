// Loading one plugin file: dlopen through Boost.DLL, the hpcinfer_plugin symbol, the ABI check, probe().
// Internal to core/plugin. Process-wide: each path is loaded once and never unloaded.
#pragma once

#include <string>

#include "core/plugin/plugin_registry.hpp"

namespace hpcinfer::plugin_detail {

// Loads `path` (or returns the entry of its earlier load). Never throws for a bad file: the entry says what failed.
PluginEntry load_plugin_file(const std::string& path);

}  // namespace hpcinfer::plugin_detail
