// weights plugin "f32": weights kept (or dequantized to) float32; the exact reference format.
#include "hpcinfer/plugin.hpp"
#include "plugins/common/dense_packed.hpp"

namespace {
void* create() { return static_cast<hpcinfer::WeightFormat*>(new hpcinfer::plugins::DenseFormat<hpcinfer::plugins::F32Rows>("f32", true)); }
const hpcinfer::PluginInfo kInfo{hpcinfer::kPluginAbiVersion, hpcinfer::PluginKind::weights, "f32", "1.0.0",
                                 "float32 weights, f32 accumulation (reference precision)", &create, nullptr};
}  // namespace
HPCINFER_EXPORT_PLUGIN(kInfo)
