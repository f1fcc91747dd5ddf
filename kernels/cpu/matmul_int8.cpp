// int8 matmul: activation quantization, the row and panel layouts, the portable kernel, and the dispatch between it,
// the AVX-512 VNNI kernel (kernels/cpu/matmul_int8_vnni.cpp) and the AVX2 one (matmul_int8_avx2.cpp).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/cpu/convert.hpp"
#include "kernels/cpu/target_clones.hpp"
#include "kernels/cpu/machine_probe.hpp"
#include "kernels/cpu/matmul_int8.hpp"

namespace hpcinfer::kernels {

using int8_detail::block_offset;
using int8_detail::kActBlock;
using int8_detail::panel_byte;
using int8_detail::QuantizedActs;
using int8_detail::scale_offset;

int64_t int8_row_bytes(int64_t cols, int64_t group) {
  return group > 0 ? (cols + group - 1) / group * (4 + group) : (cols + kActBlock - 1) / kActBlock * kActBlock;
}

namespace {
// Scale = max|x| / 127 as an f16 value; stores q + 128 for q = round(x / scale) in [-127, 127]. Cloned for
// x86-64-v3 so the rounding is an instruction, not a libm call (loading weights as int8 spent most of its time here).
HPCINFER_TARGET_CLONES("arch=x86-64-v3", "default")
float quantize_span(const float* x, int64_t n, uint8_t* u) {
  float amax = 0;
  for (int64_t c = 0; c < n; ++c) amax = std::max(amax, std::fabs(x[c]));
  const float d = f16_to_f32(f32_to_f16(amax / 127.0f)), inv = d > 0 ? 1.0f / d : 0.0f;
  for (int64_t c = 0; c < n; ++c) u[c] = uint8_t(int(std::clamp(std::nearbyint(x[c] * inv), -127.0f, 127.0f)) + 128);
  return d;
}
}  // namespace

void quantize_row_int8(const float* x, int64_t cols, int64_t group, uint8_t* row, float* channel_scale) {
  const int64_t bytes = int8_row_bytes(cols, group);
  std::memset(row, 128, size_t(bytes));  // padding: q = 0
  if (group == 0) {
    *channel_scale = quantize_span(x, cols, row);
    return;
  }
  for (int64_t b = 0; b * group < cols; ++b) {
    uint8_t* block = row + b * (4 + group);
    const float d = quantize_span(x + b * group, std::min(group, cols - b * group), block + 4);
    std::memcpy(block, &d, 4);
  }
}

namespace {
// 32-blocks in a row-layout row (group > 0: whole groups, padding blocks included).
int64_t row_blocks(int64_t cols, int64_t group) {
  return group > 0 ? (cols + group - 1) / group * (group / kActBlock) : (cols + kActBlock - 1) / kActBlock;
}
}  // namespace

void init_int8_panel(int64_t cols, int64_t group, uint8_t* panel) {
  std::memset(panel, 128, size_t(int8_panel_bytes(cols, group)));  // q = 0
  if (group > 0)
    for (int64_t b = 0; b < row_blocks(cols, group); b += group / kActBlock)
      std::memset(panel + kPanelRows * scale_offset(b, group), 0, 4 * kPanelRows);
}

void int8_row_to_panel(const uint8_t* row, int64_t cols, int64_t group, int64_t j, uint8_t* panel) {
  for (int64_t b = 0; b < row_blocks(cols, group); ++b) {
    const uint8_t* src = row + block_offset(b, group);
    uint8_t* dst = panel + kPanelRows * block_offset(b, group);
    for (int64_t s4 = 0; s4 < kActBlock / 4; ++s4)  // panel_byte(j, 4 * s4 + 0..3): 4 bytes at a time
      std::memcpy(dst + panel_byte(j, 4 * s4), src + 4 * s4, 4);
    if (group > 0 && b % (group / kActBlock) == 0)
      std::memcpy(panel + kPanelRows * scale_offset(b, group) + 4 * j, row + scale_offset(b, group), 4);
  }
}

void dequantize_int8_panel_row(const uint8_t* panel, int64_t j, int64_t cols, int64_t group, float channel_scale,
                               float* out) {
  for (int64_t c = 0; c < cols; ++c) {
    const int64_t b = c / kActBlock;
    float d = channel_scale;
    if (group > 0) std::memcpy(&d, panel + kPanelRows * scale_offset(b, group) + 4 * j, 4);
    out[c] = float(int(panel[kPanelRows * block_offset(b, group) + panel_byte(j, c % kActBlock)]) - 128) * d;
  }
}

namespace int8_detail {

void quantize_acts(const float* x, int64_t n, int64_t cols, QuantizedActs& a) {
  a.n = n, a.cols = cols, a.blocks = (cols + kActBlock - 1) / kActBlock;
  const int64_t pad = a.blocks * kActBlock;
  a.q.assign(size_t(n * pad), 0);
  a.scale.resize(size_t(n * a.blocks));
  a.correction.resize(size_t(n * a.blocks));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t b = 0; b < a.blocks; ++b) {
      const float* xs = x + i * cols + b * kActBlock;
      const int64_t m = std::min(kActBlock, cols - b * kActBlock);
      float amax = 0;
      for (int64_t c = 0; c < m; ++c) amax = std::max(amax, std::fabs(xs[c]));
      const float d = amax / 127.0f, inv = d > 0 ? 127.0f / amax : 0.0f;
      int8_t* q = a.q.data() + i * pad + b * kActBlock;
      int32_t sum = 0;
      for (int64_t c = 0; c < m; ++c) {
        q[c] = int8_t(std::clamp(std::nearbyint(xs[c] * inv), -127.0f, 127.0f));
        sum += q[c];
      }
      a.scale[size_t(i * a.blocks + b)] = d;
      a.correction[size_t(i * a.blocks + b)] = -128 * sum;
    }
}

// Portable: the same integer block dots and the same f32 steps as the VNNI kernel (bitwise equal results).
void matmul_int8_generic(const QuantizedActs& a, const Int8Weights& w, int64_t cols, float* y, int64_t ldy,
                         int64_t r0, int64_t r1) {
  const int64_t panel_bytes = int8_panel_bytes(cols, w.group), pad = a.blocks * kActBlock;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* panel = w.panels + (r / kPanelRows) * panel_bytes;
    const int64_t j = r % kPanelRows;
    for (int64_t i = 0; i < a.n; ++i) {
      const int8_t* xq = a.q.data() + i * pad;
      float acc = 0;
      for (int64_t b = 0; b < a.blocks; ++b) {
        const uint8_t* wb = panel + kPanelRows * block_offset(b, w.group);
        int32_t t = a.correction[size_t(i * a.blocks + b)];
        for (int64_t kk = 0; kk < kActBlock; ++kk)
          t += int32_t(wb[panel_byte(j, kk)]) * int32_t(xq[b * kActBlock + kk]);
        float scale = a.scale[size_t(i * a.blocks + b)];
        if (w.group > 0) {
          float sw;
          std::memcpy(&sw, panel + kPanelRows * scale_offset(b, w.group) + 4 * j, 4);
          scale = sw * scale;
        }
        acc = std::fma(float(t), scale, acc);
      }
      y[i * ldy + r] = w.group == 0 ? acc * w.channel_scales[r] : acc;
    }
  }
}

}  // namespace int8_detail

namespace {
bool have_vnni() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return std::string(simd_level()) == "avx512" && __builtin_cpu_supports("avx512vnni");
  }();
  return yes;
}
bool have_avx512() {
  static const bool yes = std::string(simd_level()) == "avx512";
  return yes;
}
bool have_avx2() {
  static const bool yes = std::string(simd_level()) != "generic";  // x86-64-v3 or wider
  return yes;
}
}  // namespace

void quantize_rows_to_int8_panel(const float* x, int64_t ld, int64_t n, int64_t cols, int64_t group, uint8_t* panel) {
  if (group > 0 && group % kActBlock == 0 && have_avx512())
    return int8_detail::quantize_rows_to_panel_avx512(x, ld, n, cols, group, panel);
  if (group > 0 && group % kActBlock == 0 && have_avx2())
    return int8_detail::quantize_rows_to_panel_avx2(x, ld, n, cols, group, panel);
  if (group <= 0) throw std::invalid_argument("quantize_rows_to_int8_panel: per-channel scales go row by row");
  thread_local std::vector<uint8_t> row;
  row.resize(size_t(int8_row_bytes(cols, group)));
  for (int64_t j = 0; j < n; ++j) {
    quantize_row_int8(x + j * ld, cols, group, row.data(), nullptr);
    int8_row_to_panel(row.data(), cols, group, j, panel);
  }
}

void matmul_int8(const float* x, int64_t n, const Int8Weights& w, int64_t cols, float* y, int64_t ldy,
                 int64_t row_begin, int64_t row_end) {
  thread_local QuantizedActs acts;  // each thread quantizes the (small) activations itself: no shared scratch
  if (have_vnni()) {
    int8_detail::quantize_acts_vnni(x, n, cols, acts);
    int8_detail::matmul_int8_vnni(acts, w, cols, y, ldy, row_begin, row_end);
  } else if (have_avx2()) {
    int8_detail::quantize_acts_avx2(x, n, cols, acts);
    int8_detail::matmul_int8_avx2(acts, w, cols, y, ldy, row_begin, row_end);
  } else {
    int8_detail::quantize_acts(x, n, cols, acts);
    int8_detail::matmul_int8_generic(acts, w, cols, y, ldy, row_begin, row_end);
  }
}

}  // namespace hpcinfer::kernels
