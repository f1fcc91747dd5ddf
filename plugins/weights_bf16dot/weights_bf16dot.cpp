// weights plugin "bf16dot": bf16 weights and bf16 activations, products summed by AVX512-BF16 `vdpbf16ps` (twice
// the f32 FMA rate: prefill), as llama.cpp's BF16 path does. The activations lose precision (8-bit mantissa) that
// the "bf16" plugin keeps (f32 activations); bench/RESULTS.md has the quality figures of each. CPUs without
// AVX512-BF16 get a clear error when the weights are packed.
#include <stdexcept>

#include "hpcinfer/plugin.hpp"
#include "plugins/common/dense_packed.hpp"

namespace hpcinfer::plugins {
namespace {

class Bf16DotFormat final : public WeightFormat {
 public:
  std::string name() const override { return "bf16dot"; }
  bool accepts(DType d) const override { return inner_.accepts(d); }
  std::unique_ptr<PackedMatrix> pack(const TensorView& src, Range rows, Range cols) const override {
    if (!kernels::bf16dot_supported())
      throw std::runtime_error("weights plugin 'bf16dot' needs a CPU with AVX512-BF16 (vdpbf16ps) and AVX-512 not "
                               "capped by HPCINFER_SIMD; this one has not: use 'bf16'");
    return inner_.pack(src, rows, cols);
  }
  void set_option(const std::string& key, const std::string& value) override { inner_.set_option(key, value); }

 private:
  DenseFormat<Bf16PairPanels> inner_{"bf16dot"};
};

void* create() { return static_cast<WeightFormat*>(new Bf16DotFormat()); }
const PluginInfo kInfo{kPluginAbiVersion, PluginKind::weights, "bf16dot", "1.0.0",
                       "bfloat16 weights and activations, AVX512-BF16 dot products (f32 accumulation)", &create,
                       nullptr};

}  // namespace
}  // namespace hpcinfer::plugins

HPCINFER_EXPORT_PLUGIN(hpcinfer::plugins::kInfo)
