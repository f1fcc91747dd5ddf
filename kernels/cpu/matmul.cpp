#include "kernels/cpu/matmul.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

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

int64_t int8_row_bytes(int64_t cols, int64_t group) {
  return group > 0 ? (cols + group - 1) / group * (4 + group) : cols;
}

namespace {
// Scale = max|x| / 127 as an f16 value; q = round(x / scale) in [-127, 127].
float quantize_span(const float* x, int64_t n, int8_t* q) {
  float amax = 0;
  for (int64_t c = 0; c < n; ++c) amax = std::max(amax, std::fabs(x[c]));
  const float d = f16_to_f32(f32_to_f16(amax / 127.0f)), inv = d > 0 ? 1.0f / d : 0.0f;
  for (int64_t c = 0; c < n; ++c) q[c] = int8_t(std::clamp(std::nearbyint(x[c] * inv), -127.0f, 127.0f));
  return d;
}
}  // namespace

void quantize_row_int8(const float* x, int64_t cols, int64_t group, uint8_t* row, float* channel_scale) {
  if (group == 0) {
    *channel_scale = quantize_span(x, cols, reinterpret_cast<int8_t*>(row));
    return;
  }
  for (int64_t b = 0; b * group < cols; ++b) {
    uint8_t* block = row + b * (4 + group);
    int8_t* q = reinterpret_cast<int8_t*>(block + 4);
    const int64_t n = std::min(group, cols - b * group);
    const float d = quantize_span(x + b * group, n, q);
    std::memset(q + n, 0, size_t(group - n));
    std::memcpy(block, &d, 4);
  }
}

void dequantize_row_int8(const uint8_t* row, int64_t cols, int64_t group, float channel_scale, float* out) {
  for (int64_t c = 0; c < cols; ++c) {
    if (group == 0) {
      out[c] = float(int8_t(row[c])) * channel_scale;
      continue;
    }
    const uint8_t* block = row + (c / group) * (4 + group);
    float d;
    std::memcpy(&d, block, 4);
    out[c] = float(int8_t(block[4 + c % group])) * d;
  }
}

}  // namespace hpcinfer::kernels
