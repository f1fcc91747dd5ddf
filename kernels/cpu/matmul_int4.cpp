// int4 matmul: the quantizer, the row and panel layouts, the portable kernel, and the dispatch between it, the
// AVX-512 VNNI kernel (kernels/cpu/matmul_int4_vnni.cpp) and the AVX2 one (matmul_int4_avx2.cpp).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "kernels/cpu/convert.hpp"
#include "kernels/cpu/machine_probe.hpp"
#include "kernels/cpu/matmul_int4.hpp"

namespace hpcinfer::kernels {

using int4_detail::kPanelBlockBytes;
using int4_detail::QuantizedActs;

namespace {
// One block of up to 32 values into {f16 d, 16 bytes}. Cloned for x86-64-v3 so rounding is an instruction.
__attribute__((target_clones("arch=x86-64-v3", "default")))
void quantize_block(const float* x, int64_t n, uint8_t* block) {
  float v[32] = {};
  std::memcpy(v, x, size_t(n) * sizeof(float));
  float amax = 0, extreme = 0;
  for (int i = 0; i < 32; ++i)
    if (std::fabs(v[i]) > amax) amax = std::fabs(v[i]), extreme = v[i];
  const uint16_t d16 = f32_to_f16(extreme / -8.0f);
  const float d = f16_to_f32(d16), inv = d != 0 ? 1.0f / d : 0.0f;
  uint8_t q[32];
  for (int i = 0; i < 32; ++i) q[i] = uint8_t(int(std::clamp(std::nearbyint(v[i] * inv), -8.0f, 7.0f)) + 8);
  std::memcpy(block, &d16, 2);
  for (int i = 0; i < 16; ++i) block[2 + i] = uint8_t(q[i] | (q[i + 16] << 4));
}

// Row j's nibble at input kk (0..31) of a panel block.
int nibble(const uint8_t* pblock, int64_t j, int64_t kk) {
  const int64_t t = (kk % 16) / 4, b = kk % 4;
  const uint8_t byte = pblock[2 * kPanelRows + t * 64 + j * 4 + b];
  return kk < 16 ? byte & 15 : byte >> 4;
}
float panel_scale(const uint8_t* pblock, int64_t j) {
  uint16_t d16;
  std::memcpy(&d16, pblock + 2 * j, 2);
  return f16_to_f32(d16);
}
}  // namespace

void quantize_row_int4(const float* x, int64_t cols, uint8_t* row) {
  for (int64_t b = 0; b < int4_blocks(cols); ++b)
    quantize_block(x + b * 32, std::min<int64_t>(32, cols - b * 32), row + b * kInt4BlockBytes);
}

void init_int4_panel(int64_t cols, uint8_t* panel) {
  for (int64_t b = 0; b < int4_blocks(cols); ++b) {
    uint8_t* pb = panel + b * kPanelBlockBytes;
    std::memset(pb, 0, 2 * kPanelRows);                     // scales 0
    std::memset(pb + 2 * kPanelRows, 0x88, 4 * 64);         // q = 8: the value 0
  }
}

void int4_row_to_panel(const uint8_t* row, int64_t cols, int64_t j, uint8_t* panel) {
  for (int64_t b = 0; b < int4_blocks(cols); ++b) {
    const uint8_t* src = row + b * kInt4BlockBytes;
    uint8_t* pb = panel + b * kPanelBlockBytes;
    std::memcpy(pb + 2 * j, src, 2);
    for (int t = 0; t < 4; ++t) std::memcpy(pb + 2 * kPanelRows + t * 64 + j * 4, src + 2 + 4 * t, 4);
  }
}

void dequantize_int4_panel_row(const uint8_t* panel, int64_t j, int64_t cols, float* out) {
  for (int64_t c = 0; c < cols; ++c) {
    const uint8_t* pb = panel + (c / 32) * kPanelBlockBytes;
    out[c] = float(nibble(pb, j, c % 32) - 8) * panel_scale(pb, j);
  }
}

namespace int4_detail {

// Portable: the same integer block dots and the same f32 steps as the vector kernels (bitwise equal results).
void matmul_int4_generic(const QuantizedActs& a, const uint8_t* panels, int64_t cols, float* y, int64_t ldy,
                         int64_t r0, int64_t r1) {
  const int64_t panel_bytes = int4_panel_bytes(cols), pad = a.blocks * 32;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* panel = panels + (r / kPanelRows) * panel_bytes;
    const int64_t j = r % kPanelRows;
    for (int64_t i = 0; i < a.n; ++i) {
      const int8_t* xq = a.q.data() + i * pad;
      float acc = 0;
      for (int64_t b = 0; b < a.blocks; ++b) {
        const uint8_t* pb = panel + b * kPanelBlockBytes;
        int32_t t = correction(a, i, b);
        for (int64_t kk = 0; kk < 32; ++kk) t += nibble(pb, j, kk) * int32_t(xq[b * 32 + kk]);
        acc = std::fma(float(t), panel_scale(pb, j) * a.scale[size_t(i * a.blocks + b)], acc);
      }
      y[i * ldy + r] = acc;
    }
  }
}

}  // namespace int4_detail

namespace {
enum class Path { vnni, avx2, generic };
Path path() {
  static const Path p = [] {
    __builtin_cpu_init();
    const std::string level = simd_level();
    if (level == "avx512" && __builtin_cpu_supports("avx512vnni")) return Path::vnni;
    return level == "generic" ? Path::generic : Path::avx2;
  }();
  return p;
}
}  // namespace

void matmul_int4(const float* x, int64_t n, const uint8_t* panels, int64_t cols, float* y, int64_t ldy,
                 int64_t row_begin, int64_t row_end) {
  thread_local QuantizedActs acts;  // each thread quantizes the (small) activations itself: no shared scratch
  switch (path()) {
    case Path::vnni:
      int8_detail::quantize_acts_vnni(x, n, cols, acts);
      int4_detail::matmul_int4_vnni(acts, panels, cols, y, ldy, row_begin, row_end);
      break;
    case Path::avx2:
      int8_detail::quantize_acts_avx2(x, n, cols, acts);
      int4_detail::matmul_int4_avx2(acts, panels, cols, y, ldy, row_begin, row_end);
      break;
    case Path::generic:
      int8_detail::quantize_acts(x, n, cols, acts);
      int4_detail::matmul_int4_generic(acts, panels, cols, y, ldy, row_begin, row_end);
      break;
  }
}

}  // namespace hpcinfer::kernels
