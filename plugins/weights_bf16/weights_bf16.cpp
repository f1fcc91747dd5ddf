// weights plugin "bf16": weights stored as bfloat16 (half the bytes of f32), f32 activations and accumulation.
#include "hpcinfer/plugin.hpp"
#include "plugins/common/dense_packed.hpp"

namespace {
void* create() { return static_cast<hpcinfer::WeightFormat*>(new hpcinfer::plugins::DenseFormat<hpcinfer::plugins::Bf16Panels>("bf16", true)); }
const hpcinfer::PluginInfo kInfo{hpcinfer::kPluginAbiVersion, hpcinfer::PluginKind::weights, "bf16", "1.0.0",
                                 "bfloat16 weights, f32 accumulation", &create, nullptr};
}  // namespace
HPCINFER_EXPORT_PLUGIN(kInfo)
