// weights plugin "bf16dot": bf16 weights and bf16 activations, products summed by AVX512-BF16 `vdpbf16ps` (twice
// the f32 FMA rate: prefill), as llama.cpp's BF16 path does. The activations lose precision (8-bit mantissa) that
// the "bf16" plugin keeps (f32 activations); bench/RESULTS.md has the quality figures of each. CPUs without
// AVX512-BF16: the plugin's probe says so, and a configuration naming it is refused before any weights move.
#include <stdexcept>

#include "hpcinfer/plugin.hpp"
#include "plugins/common/dense_packed.hpp"

namespace hpcinfer::plugins {
namespace {

class Bf16DotFormat final : public WeightFormat {
 public:
  std::string name() const override { return "bf16dot"; }
  bool accepts(DType d) const override { return inner_.accepts(d); }
  bool supports_backend(const std::string& backend) const override { return inner_.supports_backend(backend); }
  size_t bytes(int64_t rows, int64_t cols) const override { return inner_.bytes(rows, cols); }
  std::unique_ptr<PackedMatrix> pack(const TensorView& src, Range rows, Range cols, Backend& be) const override {
    if (!kernels::bf16dot_supported()) throw std::runtime_error(kNeeds);
    return inner_.pack(src, rows, cols, be);
  }
  static constexpr const char* kNeeds =
      "weights plugin 'bf16dot' needs a CPU with AVX512-BF16 (vdpbf16ps) and AVX-512 not capped by HPCINFER_SIMD; "
      "this one has not: use 'bf16'";
  void set_option(const std::string& key, const std::string& value) override { inner_.set_option(key, value); }
  std::string image_key() const override { return inner_.image_key(); }
  std::unique_ptr<PackedMatrix> adopt(const std::vector<HostBytes>& image, Range rows, Range cols, Backend& be,
                                      std::shared_ptr<const void> owner) const override {
    if (!kernels::bf16dot_supported()) throw std::runtime_error(kNeeds);
    return inner_.adopt(image, rows, cols, be, std::move(owner));
  }

 private:
  DenseFormat<Bf16PairPanels> inner_{"bf16dot"};
};

void* create() { return static_cast<WeightFormat*>(new Bf16DotFormat()); }
ProbeResult probe() {
  if (kernels::bf16dot_supported()) return {};
  return {false, Bf16DotFormat::kNeeds};
}
const PluginInfo kInfo{kPluginAbiVersion, PluginKind::weights, "bf16dot", "1.0.0",
                       "bfloat16 weights and activations, AVX512-BF16 dot products (f32 accumulation)", &create,
                       &probe};

}  // namespace
}  // namespace hpcinfer::plugins

HPCINFER_EXPORT_PLUGIN(hpcinfer::plugins::kInfo)
