// Weights quantized into an int8 panel at load, AVX2 + F16C (compiled with -march=x86-64-v3; called where
// simd_level() is avx2). The same operations as quantize_int8_avx512.cpp, 8 lanes at a time: bitwise what
// quantize_row_int8 + int8_row_to_panel give row by row.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/matmul_int8.hpp"

namespace hpcinfer::kernels::int8_detail {
namespace {

// 8 values (m of them real, the rest 0), quantized: 8 int32 q in [-127, 127].
inline __m256i quantize8(const float* x, int64_t m, __m256 inv) {
  alignas(32) float t[8] = {};
  __m256 v;
  if (m >= 8) {
    v = _mm256_loadu_ps(x);
  } else {
    if (m > 0) std::memcpy(t, x, size_t(m) * 4);
    v = _mm256_load_ps(t);
  }
  const __m256 r = _mm256_round_ps(_mm256_mul_ps(v, inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f)));
}

}  // namespace

void quantize_rows_to_panel_avx2(const float* x, int64_t ld, int64_t n, int64_t cols, int64_t group, uint8_t* panel) {
  const int64_t per_group = group / kActBlock;
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i dword_order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);  // undoes the packs' lane interleave
  for (int64_t c0 = 0, g = 0; c0 < cols; c0 += group, ++g) {
    const int64_t m = std::min(group, cols - c0);
    alignas(32) float amax[kPanelRows] = {}, d[kPanelRows], inv[kPanelRows];
    for (int64_t j = 0; j < n; ++j) {
      const float* xr = x + j * ld + c0;
      __m256 a = _mm256_setzero_ps();
      int64_t c = 0;
      for (; c + 8 <= m; c += 8) a = _mm256_max_ps(a, _mm256_and_ps(_mm256_loadu_ps(xr + c), abs_mask));
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, a);
      float mx = 0;
      for (float l : lanes) mx = std::max(mx, l);
      for (; c < m; ++c) mx = std::max(mx, std::fabs(xr[c]));
      amax[j] = mx;
    }
    for (int h = 0; h < kPanelRows; h += 8) {
      const __m256 dv = _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_div_ps(_mm256_load_ps(amax + h), _mm256_set1_ps(127.0f)),
                                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
      _mm256_store_ps(d + h, dv);
      const __m256 pos = _mm256_cmp_ps(dv, _mm256_setzero_ps(), _CMP_GT_OQ);
      _mm256_store_ps(inv + h, _mm256_and_ps(pos, _mm256_div_ps(_mm256_set1_ps(1.0f), dv)));
    }
    std::memcpy(panel + kPanelRows * scale_offset(g * per_group, group), d, size_t(n) * 4);
    for (int64_t j = 0; j < n; ++j) {
      const float* xr = x + j * ld + c0;
      const __m256 s = _mm256_set1_ps(inv[j]);
      for (int64_t o = 0, b = g * per_group; o < m; o += kActBlock, ++b) {  // blocks past cols stay padding (128)
        const __m256i q01 = _mm256_packs_epi32(quantize8(xr + o, m - o, s), quantize8(xr + o + 8, m - o - 8, s));
        const __m256i q23 = _mm256_packs_epi32(quantize8(xr + o + 16, m - o - 16, s), quantize8(xr + o + 24, m - o - 24, s));
        const __m256i u = _mm256_xor_si256(_mm256_packs_epi16(q01, q23), _mm256_set1_epi8(char(0x80)));  // q + 128
        alignas(32) uint32_t w[kActBlock / 4];
        _mm256_store_si256(reinterpret_cast<__m256i*>(w), _mm256_permutevar8x32_epi32(u, dword_order));
        uint8_t* dst = panel + kPanelRows * block_offset(b, group) + 4 * j;
        for (int64_t s4 = 0; s4 < kActBlock / 4; ++s4) std::memcpy(dst + panel_byte(0, 4 * s4), &w[s4], 4);
      }
    }
  }
}

}  // namespace hpcinfer::kernels::int8_detail
