// The int8 matmul on AVX2 (compiled with -march=x86-64-v3; the path for CPUs without AVX-512 VNNI, see
// matmul_int8.cpp). AVX2 has no u8 x s8 dot product into int32 that cannot saturate (vpmaddubsw saturates at
// 2 x 255 x 127), so weights are widened to 16 bits: vpmovzxbw of 16 panel bytes (4 rows x 4 inputs) against the
// block's 4 activations repeated, vpmaddwd gives each row's two pair sums, exact in int32. Per block the pair sums
// are added across the 8 slices, folded to one int32 per row, corrected by -128 * sum(xq), and then
// acc = fma(float(dot), w_scale * x_scale, acc): the portable kernel's arithmetic, bitwise the same results.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/matmul_int8.hpp"

namespace hpcinfer::kernels::int8_detail {
namespace {

#define HPCI_INLINE inline __attribute__((always_inline))

// Rows 8h .. 8h + 7 of a 32-block: the 16 rows' int32 dots are lanes of out[0] (rows 0-7) and out[1] (rows 8-15).
HPCI_INLINE void block_dots(const uint8_t* wb, const int8_t* xq, int32_t correction, __m256i out[2]) {
  __m256i pairs[4];  // pairs[c]: rows 4c .. 4c + 3, two lanes each (inputs 0-1 and 2-3 of every slice, summed)
  for (int c = 0; c < 4; ++c) pairs[c] = _mm256_setzero_si256();
  for (int s = 0; s < 8; ++s) {
    int32_t x8;  // the slice's 4 activations, then as 16-bit values repeated: x0 x1 x2 x3 x0 x1 x2 x3 ...
    std::memcpy(&x8, xq + s * 4, 4);
    const __m256i xv = _mm256_set1_epi64x(_mm_cvtsi128_si64(_mm_cvtepi8_epi16(_mm_cvtsi32_si128(x8))));
    for (int c = 0; c < 4; ++c) {
      const __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wb + s * 64 + c * 16)));
      pairs[c] = _mm256_add_epi32(pairs[c], _mm256_madd_epi16(w, xv));
    }
  }
  const __m256i corr = _mm256_set1_epi32(correction);
  for (int h = 0; h < 2; ++h) {
    // hadd: [r0 r1 r4 r5 | r2 r3 r6 r7] of rows 8h..; the permute puts them in order.
    const __m256i sums = _mm256_hadd_epi32(pairs[2 * h], pairs[2 * h + 1]);
    out[h] = _mm256_add_epi32(_mm256_permute4x64_epi64(sums, 0xD8), corr);
  }
}

template <bool Grouped>
HPCI_INLINE void panel_row(const QuantizedActs& a, int64_t i, const uint8_t* panel, int64_t group,
                           const float* channel_scales, float* out) {
  const int64_t pad = a.blocks * kActBlock;
  __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  PanelWalk walk(panel, group);
  for (int64_t b = 0; b < a.blocks; ++b) {
    const uint8_t* wb = walk.next();
    __m256i dot[2];
    block_dots(wb, a.q.data() + i * pad + b * kActBlock, a.correction[size_t(i * a.blocks + b)], dot);
    const __m256 dx = _mm256_set1_ps(a.scale[size_t(i * a.blocks + b)]);
    for (int h = 0; h < 2; ++h) {
      __m256 scale = dx;
      if constexpr (Grouped)
        scale = _mm256_mul_ps(_mm256_loadu_ps(walk.scales + 8 * h), dx);
      acc[h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[h]), scale, acc[h]);
    }
  }
  for (int h = 0; h < 2; ++h) {
    if constexpr (!Grouped) acc[h] = _mm256_mul_ps(acc[h], _mm256_loadu_ps(channel_scales + 8 * h));
    _mm256_storeu_ps(out + 8 * h, acc[h]);
  }
}

template <bool Grouped>
void run(const QuantizedActs& a, const Int8Weights& w, int64_t cols, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  const int64_t panel_bytes = int8_panel_bytes(cols, w.group);
  for (int64_t row = r0; row < r1; row += kPanelRows) {
    const uint8_t* panel = w.panels + (row / kPanelRows) * panel_bytes;
    const int64_t valid = std::min(kPanelRows, r1 - row);
    for (int64_t i = 0; i < a.n; ++i) {
      float out[kPanelRows];
      panel_row<Grouped>(a, i, panel, w.group, Grouped ? nullptr : w.channel_scales + row, out);
      std::memcpy(y + i * ldy + row, out, size_t(valid) * sizeof(float));
    }
  }
}

}  // namespace

// The same quantization as quantize_acts (round half to even via the default MXCSR mode, as nearbyint), 32 values per
// step: identical bytes.
void quantize_acts_avx2(const float* x, int64_t n, int64_t cols, QuantizedActs& a) {
  a.n = n, a.cols = cols, a.blocks = (cols + kActBlock - 1) / kActBlock;
  const int64_t pad = a.blocks * kActBlock;
  a.q.resize(size_t(n * pad));
  a.scale.resize(size_t(n * a.blocks));
  a.correction.resize(size_t(n * a.blocks));
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t b = 0; b < a.blocks; ++b) {
      const float* xs = x + i * cols + b * kActBlock;
      const int64_t m = std::min(kActBlock, cols - b * kActBlock);
      __m256 v[4];
      for (int k = 0; k < 4; ++k)  // lanes past the row's end load as 0
        v[k] = _mm256_maskload_ps(xs + 8 * k, _mm256_cmpgt_epi32(_mm256_set1_epi32(int(m - 8 * k)), lane));
      __m256 mx = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v[0], abs_mask), _mm256_and_ps(v[1], abs_mask)),
                                _mm256_max_ps(_mm256_and_ps(v[2], abs_mask), _mm256_and_ps(v[3], abs_mask)));
      float lanes[8];
      _mm256_storeu_ps(lanes, mx);
      float amax = 0;
      for (float f : lanes) amax = std::max(amax, f);
      const float inv = amax > 0 ? 127.0f / amax : 0.0f;
      __m256i q[4], sum = _mm256_setzero_si256();
      for (int k = 0; k < 4; ++k) {
        q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], _mm256_set1_ps(inv)));
        q[k] = _mm256_max_epi32(_mm256_min_epi32(q[k], _mm256_set1_epi32(127)), _mm256_set1_epi32(-127));
        sum = _mm256_add_epi32(sum, q[k]);
      }
      // int32 -> int8 in order: packs interleave 128-bit halves, the permute restores the order.
      const __m256i w16 = _mm256_packs_epi32(q[0], q[1]), x16 = _mm256_packs_epi32(q[2], q[3]);
      const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
      const __m256i b8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w16, x16), order);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(a.q.data() + i * pad + b * kActBlock), b8);
      int32_t s8[8];
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(s8), sum);
      int32_t total = 0;
      for (int32_t t : s8) total += t;
      a.scale[size_t(i * a.blocks + b)] = amax / 127.0f;
      a.correction[size_t(i * a.blocks + b)] = -128 * total;
    }
}

void matmul_int8_avx2(const QuantizedActs& a, const Int8Weights& w, int64_t cols, float* y, int64_t ldy, int64_t r0,
                      int64_t r1) {
  if (w.group > 0)
    run<true>(a, w, cols, y, ldy, r0, r1);
  else
    run<false>(a, w, cols, y, ldy, r0, r1);
}

}  // namespace hpcinfer::kernels::int8_detail
