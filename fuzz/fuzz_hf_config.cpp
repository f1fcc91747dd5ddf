// config.json of Hugging Face checkpoints: every architecture's keys, RoPE objects, MoE and MLA settings, then the
// description's layout (the tensor shapes a loader would check files against).
#include <exception>
#include <nlohmann/json.hpp>

#include "core/model/hf_source.hpp"
#include "core/model/model_layout.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const nlohmann::json j = nlohmann::json::parse(data, data + size);
    const hpcinfer::ModelDesc d = hpcinfer::parse_hf_config(j, "config.json");
    (void)hpcinfer::stored_tensors(d);
  } catch (const std::exception&) {
  }
  return 0;
}
