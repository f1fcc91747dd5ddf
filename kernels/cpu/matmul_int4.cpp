// int4 matmul: the quantizer, the row and panel layouts, the portable kernel, and the dispatch between it, the
// AVX-512 VNNI kernel (kernels/cpu/matmul_int4_vnni.cpp) and the AVX2 one (matmul_int4_avx2.cpp).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "kernels/cpu/convert.hpp"
#include "kernels/cpu/target_clones.hpp"
#include "kernels/cpu/machine_probe.hpp"
#include "kernels/cpu/matmul_int4.hpp"

namespace hpcinfer::kernels {

using int4_detail::kMinsAt;
using int4_detail::nibbles_at;
using int4_detail::QuantizedActs;

namespace {
// One block of up to 32 values into {f16 d, 16 bytes}. Cloned for x86-64-v3 so rounding is an instruction.
HPCINFER_TARGET_CLONES("arch=x86-64-v3", "default")
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
int nibble(const uint8_t* pblock, bool has_min, int64_t j, int64_t kk) {
  const int64_t t = (kk % 16) / 4, b = kk % 4;
  const uint8_t byte = pblock[nibbles_at(has_min) + t * 64 + j * 4 + b];
  return kk < 16 ? byte & 15 : byte >> 4;
}
float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}
}  // namespace

void quantize_row_int4(const float* x, int64_t cols, uint8_t* row) {
  for (int64_t b = 0; b < int4_blocks(cols); ++b)
    quantize_block(x + b * 32, std::min<int64_t>(32, cols - b * 32), row + b * int4_block_bytes(false));
}

void init_int4_panel(int64_t cols, bool has_min, uint8_t* panel) {
  const int64_t pbb = int4_panel_block_bytes(has_min);
  for (int64_t b = 0; b < int4_blocks(cols); ++b) {
    uint8_t* pb = panel + b * pbb;
    std::memset(pb, 0, size_t(nibbles_at(has_min)));                   // d (and m) 0
    std::memset(pb + nibbles_at(has_min), has_min ? 0 : 0x88, 4 * 64);  // the value 0
  }
}

void int4_row_to_panel(const uint8_t* row, int64_t cols, bool has_min, int64_t j, uint8_t* panel) {
  const int64_t rbb = int4_block_bytes(has_min), pbb = int4_panel_block_bytes(has_min), qs = has_min ? 4 : 2;
  for (int64_t b = 0; b < int4_blocks(cols); ++b) {
    const uint8_t* src = row + b * rbb;
    uint8_t* pb = panel + b * pbb;
    std::memcpy(pb + 2 * j, src, 2);
    if (has_min) std::memcpy(pb + kMinsAt + 2 * j, src + 2, 2);
    for (int t = 0; t < 4; ++t) std::memcpy(pb + nibbles_at(has_min) + t * 64 + j * 4, src + qs + 4 * t, 4);
  }
}

void dequantize_int4_panel_row(const uint8_t* panel, int64_t j, int64_t cols, bool has_min, float* out) {
  for (int64_t c = 0; c < cols; ++c) {
    const uint8_t* pb = panel + (c / 32) * int4_panel_block_bytes(has_min);
    const int q = nibble(pb, has_min, j, c % 32);
    const float d = f16_at(pb + 2 * j);
    out[c] = has_min ? float(q) * d + f16_at(pb + kMinsAt + 2 * j) : float(q - 8) * d;
  }
}

namespace int4_detail {

// Portable: the same integer block dots and the same f32 steps as the vector kernels (bitwise equal results).
void matmul_int4_generic(const QuantizedActs& a, const Int4Weights& w, int64_t cols, float* y, int64_t ldy,
                         int64_t r0, int64_t r1) {
  const int64_t panel_bytes = int4_panel_bytes(cols, w.has_min), pbb = int4_panel_block_bytes(w.has_min);
  const int64_t pad = a.blocks * 32;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* panel = w.panels + (r / kPanelRows) * panel_bytes;
    const int64_t j = r % kPanelRows;
    for (int64_t i = 0; i < a.n; ++i) {
      const int8_t* xq = a.q.data() + i * pad;
      float acc = 0;
      for (int64_t b = 0; b < a.blocks; ++b) {
        const uint8_t* pb = panel + b * pbb;
        int32_t t = dot_seed(a, i, b, w.has_min);
        for (int64_t kk = 0; kk < 32; ++kk) t += nibble(pb, w.has_min, j, kk) * int32_t(xq[b * 32 + kk]);
        const float dx = a.scale[size_t(i * a.blocks + b)];
        acc = std::fma(float(t), f16_at(pb + 2 * j) * dx, acc);
        if (w.has_min) acc = std::fma(act_sum(a, i, b), f16_at(pb + kMinsAt + 2 * j) * dx, acc);
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

void matmul_int4(const float* x, int64_t n, const Int4Weights& w, int64_t cols, float* y, int64_t ldy,
                 int64_t row_begin, int64_t row_end) {
  thread_local QuantizedActs acts;  // each thread quantizes the (small) activations itself: no shared scratch
  switch (path()) {
    case Path::vnni:
      int8_detail::quantize_acts_vnni(x, n, cols, acts);
      int4_detail::matmul_int4_vnni(acts, w, cols, y, ldy, row_begin, row_end);
      break;
    case Path::avx2:
      int8_detail::quantize_acts_avx2(x, n, cols, acts);
      int4_detail::matmul_int4_avx2(acts, w, cols, y, ldy, row_begin, row_end);
      break;
    case Path::generic:
      int8_detail::quantize_acts(x, n, cols, acts);
      int4_detail::matmul_int4_generic(acts, w, cols, y, ldy, row_begin, row_end);
      break;
  }
}

}  // namespace hpcinfer::kernels
