// The experiment YAML (every key, type and range of the schema; anchors, aliases, deep nesting), with one --set.
#include <exception>
#include <string>

#include "core/config/load_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)hpcinfer::load_config_text(text, "fuzz.yaml", {"world.tp=1"});
  } catch (const std::exception&) {
  }
  return 0;
}
