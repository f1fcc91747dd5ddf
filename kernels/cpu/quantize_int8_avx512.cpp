// Weights quantized into an int8 panel at load, AVX-512 (compiled with -march=x86-64-v4; called where simd_level()
// is avx512, see matmul_int8.cpp). Bitwise what quantize_row_int8 + int8_row_to_panel give row by row: per group and
// row, amax = max |x| (order-free), d = f16(amax / 127) by the F16C conversion (round to nearest even, as
// f32_to_f16), inv = d > 0 ? 1 / d : 0, q = clamp(nearbyint(x * inv), -127, 127) + 128; the same IEEE operations.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/matmul_int8.hpp"

namespace hpcinfer::kernels::int8_detail {
namespace {

inline __mmask16 first(int64_t k) { return k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << std::max<int64_t>(k, 0)) - 1); }

// 16 values (m of them real, the rest 0) -> 16 bytes q + 128.
inline __m128i quantize16(const float* x, int64_t m, __m512 inv) {
  const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(first(m), x), inv);
  const __m512 r = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 c = _mm512_min_ps(_mm512_max_ps(r, _mm512_set1_ps(-127.0f)), _mm512_set1_ps(127.0f));
  return _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(c), _mm512_set1_epi32(128)));
}

}  // namespace

void quantize_rows_to_panel_avx512(const float* x, int64_t ld, int64_t n, int64_t cols, int64_t group,
                                   uint8_t* panel) {
  const int64_t per_group = group / kActBlock;
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  for (int64_t c0 = 0, g = 0; c0 < cols; c0 += group, ++g) {
    const int64_t m = std::min(group, cols - c0);
    alignas(64) float amax[kPanelRows] = {}, d[kPanelRows], inv[kPanelRows];
    for (int64_t j = 0; j < n; ++j) {
      const float* xr = x + j * ld + c0;
      __m512 a = _mm512_setzero_ps();
      for (int64_t c = 0; c < m; c += 16) a = _mm512_max_ps(a, _mm512_and_ps(_mm512_maskz_loadu_ps(first(m - c), xr + c), abs_mask));
      amax[j] = _mm512_reduce_max_ps(a);
    }
    const __m512 dv = _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_div_ps(_mm512_load_ps(amax), _mm512_set1_ps(127.0f)),
                                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    _mm512_store_ps(d, dv);
    _mm512_store_ps(inv, _mm512_maskz_div_ps(_mm512_cmp_ps_mask(dv, _mm512_setzero_ps(), _CMP_GT_OQ), _mm512_set1_ps(1.0f), dv));
    std::memcpy(panel + kPanelRows * scale_offset(g * per_group, group), d, size_t(n) * 4);
    for (int64_t j = 0; j < n; ++j) {
      const float* xr = x + j * ld + c0;
      const __m512 s = _mm512_set1_ps(inv[j]);
      for (int64_t o = 0, b = g * per_group; o < m; o += kActBlock, ++b) {  // blocks past cols stay padding (128)
        alignas(32) uint32_t w[kActBlock / 4];
        _mm256_store_si256(reinterpret_cast<__m256i*>(w),
                           _mm256_set_m128i(quantize16(xr + o + 16, m - o - 16, s), quantize16(xr + o, m - o, s)));
        uint8_t* dst = panel + kPanelRows * block_offset(b, group) + 4 * j;
        for (int64_t s4 = 0; s4 < kActBlock / 4; ++s4) std::memcpy(dst + panel_byte(0, 4 * s4), &w[s4], 4);
      }
    }
  }
}

}  // namespace hpcinfer::kernels::int8_detail
