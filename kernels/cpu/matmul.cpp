#include "kernels/cpu/matmul.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/convert.hpp"
#include "kernels/cpu/machine_probe.hpp"
#include "kernels/cpu/matmul_isa.hpp"

namespace hpcinfer::kernels {
namespace {

const MatmulKernels& kernels() {
  static const MatmulKernels k = [] {
    const std::string level = simd_level();
    if (level == "avx512") return matmul_kernels_avx512();
    if (level == "avx2") return matmul_kernels_avx2();
    return matmul_kernels_generic();
  }();
  return k;
}

}  // namespace

void matmul_f32(const float* x, int64_t n, const float* w, int64_t cols, float* y, int64_t ldy, int64_t row_begin,
                int64_t row_end) {
  kernels().f32(x, n, w, cols, y, ldy, row_begin, row_end);
}

void matmul_bf16(const float* x, int64_t n, const uint16_t* w, int64_t cols, float* y, int64_t ldy,
                 int64_t row_begin, int64_t row_end) {
  kernels().bf16(x, n, w, cols, y, ldy, row_begin, row_end);
}

void matmul_int8(const float* x, int64_t n, const Int8Weights& w, int64_t cols, float* y, int64_t ldy,
                 int64_t row_begin, int64_t row_end) {
  kernels().int8(x, n, w, cols, y, ldy, row_begin, row_end);
}

void quantize_row_int8(const float* x, int64_t cols, int64_t group, int8_t* q, float* scales) {
  const int64_t g = group > 0 ? group : cols;
  for (int64_t b = 0; b < cols; b += g) {
    const int64_t e = std::min(cols, b + g);
    float amax = 0;
    for (int64_t c = b; c < e; ++c) amax = std::max(amax, std::fabs(x[c]));
    const float d = f16_to_f32(f32_to_f16(amax / 127.0f)), inv = d > 0 ? 1.0f / d : 0.0f;
    for (int64_t c = b; c < e; ++c)
      q[c] = int8_t(std::clamp(std::nearbyint(x[c] * inv), -127.0f, 127.0f));
    scales[b / g] = d;
  }
}

}  // namespace hpcinfer::kernels
