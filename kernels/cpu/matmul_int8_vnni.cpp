// The int8 matmul on AVX-512 VNNI (compiled with -march=x86-64-v4 -mavx512vnni; called only where the CPU has
// both, see matmul_int8.cpp). 256-bit vpdpbusd: 32 u8 weights x 32 int8 activations -> 8 int32 lanes, seeded with
// the block's -128 * sum(xq) correction in lane 0; then f32 lanes += lanes * (w_scale * x_scale).
// Each output is one 8-lane f32 accumulator over blocks in ascending order, summed in a fixed order: the same
// arithmetic whatever the batch and the tile, so results do not depend on batch composition.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/matmul_int8.hpp"

namespace hpcinfer::kernels::int8_detail {
namespace {

inline __attribute__((always_inline)) float hsum8(__m256 v) {
  float a[8];
  _mm256_storeu_ps(a, v);
  return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

// MR activation rows x NR weight rows. Grouped: per-block weight scales; else per-channel (applied at the end).
template <int MR, int NR, bool Grouped>
inline __attribute__((always_inline)) void tile(const QuantizedActs& a, int64_t i0, const Int8Weights& w,
                                                int64_t row_bytes, int64_t r, float* y, int64_t ldy) {
  const int64_t pad = a.blocks * kActBlock;
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  const uint8_t* row0 = w.rows + r * row_bytes;
  for (int64_t b = 0; b < a.blocks; ++b) {
    const int64_t wo = block_offset(b, w.group);
    __m256i wv[NR];
    __m256 sw[NR];
    for (int j = 0; j < NR; ++j) {
      wv[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row0 + j * row_bytes + wo));
      if constexpr (Grouped) {
        float s;
        std::memcpy(&s, row0 + j * row_bytes + scale_offset(b, w.group), 4);
        sw[j] = _mm256_set1_ps(s);
      }
    }
    for (int i = 0; i < MR; ++i) {
      const int64_t ib = (i0 + i) * a.blocks + b;
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q.data() + (i0 + i) * pad + b * kActBlock));
      const __m256i seed = _mm256_zextsi128_si256(_mm_cvtsi32_si128(a.correction[size_t(ib)]));
      const __m256 dx = _mm256_set1_ps(a.scale[size_t(ib)]);
      for (int j = 0; j < NR; ++j) {
        const __m256 dot = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(seed, wv[j], xv));
        if constexpr (Grouped)
          acc[i][j] = _mm256_fmadd_ps(dot, _mm256_mul_ps(sw[j], dx), acc[i][j]);
        else
          acc[i][j] = _mm256_fmadd_ps(dot, dx, acc[i][j]);
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      const float s = hsum8(acc[i][j]);
      y[(i0 + i) * ldy + r + j] = Grouped ? s : s * w.channel_scales[r + j];
    }
}

template <bool Grouped>
void run(const QuantizedActs& a, const Int8Weights& w, int64_t cols, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  // Decode (n < 4) takes 16 weight rows at a time: 16 streams per thread keep more cache misses in flight (DRAM
  // streaming of a 90 MB matrix on 2 threads: 23.6 GB/s with 8 rows, 28.1 with 16, 19.5 with 4; measured side by side).
  constexpr int MR = 4, NR = 4, NR1 = 16;
  const int64_t rb = int8_row_bytes(cols, w.group), n = a.n;
  int64_t r = r0;
  if (n < MR)
    for (; r + NR1 <= r1; r += NR1)
      for (int64_t i = 0; i < n; ++i) tile<1, NR1, Grouped>(a, i, w, rb, r, y, ldy);
  for (; r + NR <= r1; r += NR) {
    int64_t i = 0;
    for (; i + MR <= n; i += MR) tile<MR, NR, Grouped>(a, i, w, rb, r, y, ldy);
    for (; i < n; ++i) tile<1, NR, Grouped>(a, i, w, rb, r, y, ldy);
  }
  for (; r < r1; ++r)
    for (int64_t i = 0; i < n; ++i) tile<1, 1, Grouped>(a, i, w, rb, r, y, ldy);
}

}  // namespace

// The same quantization as quantize_acts (round half to even via the default MXCSR mode, as nearbyint), 32 values
// per step: identical bytes, about 20x faster than the scalar loop.
void quantize_acts_vnni(const float* x, int64_t n, int64_t cols, QuantizedActs& a) {
  a.n = n, a.cols = cols, a.blocks = (cols + kActBlock - 1) / kActBlock;
  const int64_t pad = a.blocks * kActBlock;
  a.q.resize(size_t(n * pad));
  a.scale.resize(size_t(n * a.blocks));
  a.correction.resize(size_t(n * a.blocks));
  const __m512 sign = _mm512_set1_ps(-0.0f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t b = 0; b < a.blocks; ++b) {
      const float* xs = x + i * cols + b * kActBlock;
      const int64_t m = std::min(kActBlock, cols - b * kActBlock);
      const __mmask16 m0 = __mmask16(m >= 16 ? 0xffff : (1u << m) - 1);
      const __mmask16 m1 = __mmask16(m >= 32 ? 0xffff : m <= 16 ? 0 : (1u << (m - 16)) - 1);
      const __m512 x0 = _mm512_maskz_loadu_ps(m0, xs), x1 = _mm512_maskz_loadu_ps(m1, xs + 16);
      const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_andnot_ps(sign, x0), _mm512_andnot_ps(sign, x1)));
      const float inv = amax > 0 ? 127.0f / amax : 0.0f;
      const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, _mm512_set1_ps(inv)));
      const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, _mm512_set1_ps(inv)));
      int8_t* q = a.q.data() + i * pad + b * kActBlock;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtsepi32_epi8(q0));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtsepi32_epi8(q1));
      a.scale[size_t(i * a.blocks + b)] = amax / 127.0f;
      a.correction[size_t(i * a.blocks + b)] = -128 * _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    }
}

void matmul_int8_vnni(const QuantizedActs& a, const Int8Weights& w, int64_t cols, float* y, int64_t ldy, int64_t r0,
                      int64_t r1) {
  if (w.group > 0)
    run<true>(a, w, cols, y, ldy, r0, r1);
  else
    run<false>(a, w, cols, y, ldy, r0, r1);
}

}  // namespace hpcinfer::kernels::int8_detail
