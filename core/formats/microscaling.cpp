#include "core/formats/microscaling.hpp"

#include <cmath>
#include <limits>

#include "kernels/cpu/convert.hpp"

namespace hpcinfer::formats {

float e2m1_to_f32(uint8_t code) {
  static const float kValues[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  const float v = kValues[code & 7];
  return code & 8 ? -v : v;
}

float e8m0_to_f32(uint8_t s) {
  if (s == 255) return std::numeric_limits<float>::quiet_NaN();
  return std::ldexp(1.0f, int(s) - 127);
}

void dequantize_mxfp4_row(const uint8_t* blocks, const uint8_t* scales, int64_t n, float* out) {
  for (int64_t g = 0; g < n / 32; ++g) {
    const float scale = e8m0_to_f32(scales[g]);
    for (int i = 0; i < 16; ++i) {
      const uint8_t b = blocks[g * 16 + i];
      out[g * 32 + 2 * i] = e2m1_to_f32(b & 0xF) * scale;
      out[g * 32 + 2 * i + 1] = e2m1_to_f32(b >> 4) * scale;
    }
  }
}

void dequantize_fp8_row(const uint8_t* row, int64_t r, int64_t cols, const float* scale_inv, int64_t scale_cols,
                        int64_t block, float* out) {
  const float* s = scale_inv + (r / block) * scale_cols;
  for (int64_t c = 0; c < cols; ++c) out[c] = kernels::e4m3fn_to_f32(row[c]) * s[c / block];
}

}  // namespace hpcinfer::formats
