// The int8 matmul on AVX-512 VNNI over weight panels (compiled with -march=x86-64-v4 -mavx512vnni; called only
// where the CPU has both, see matmul_int8.cpp). One 512-bit vpdpbusd takes a 64-byte panel slice (16 rows x 4
// u8 weights) against 4 int8 activations broadcast: 16 int32 lanes, one per output row. Eight slices make a
// 32-block's exact integer dot for 16 rows, seeded with the block's -128 * sum(xq) correction; then
// acc = fma(float(dot), w_scale * x_scale, acc) per lane, blocks ascending: the portable kernel's arithmetic.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/matmul_int8.hpp"
#include "kernels/cpu/panel_tiles.hpp"

namespace hpcinfer::kernels::int8_detail {
namespace {

#define HPCI_INLINE inline __attribute__((always_inline))

HPCI_INLINE __m512i broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// out[i][0..16) = the panel's 16 rows against activation rows i0 + i, i < MR.
template <int MR, bool Grouped>
HPCI_INLINE void panel_tile(const QuantizedActs& a, int64_t i0, const uint8_t* panel, int64_t group,
                            const float* channel_scales, float (*out)[kPanelRows]) {
  const int64_t pad = a.blocks * kActBlock;
  __m512 acc[MR];
  for (int i = 0; i < MR; ++i) acc[i] = _mm512_setzero_ps();
  PanelWalk walk(panel, group);
  for (int64_t b = 0; b < a.blocks; ++b) {
    const uint8_t* wb = walk.next();
    __m512i dot[MR];
    for (int i = 0; i < MR; ++i) dot[i] = _mm512_set1_epi32(a.correction[size_t((i0 + i) * a.blocks + b)]);
    if constexpr (MR == 1) {  // decode: two chains of four (integer sums: exact in any order)
      __m512i odd = _mm512_setzero_si512();
      const int8_t* xq = a.q.data() + i0 * pad + b * kActBlock;
      for (int s = 0; s < 8; s += 2) {
        dot[0] = _mm512_dpbusd_epi32(dot[0], _mm512_loadu_si512(wb + s * 64), broadcast4(xq + s * 4));
        odd = _mm512_dpbusd_epi32(odd, _mm512_loadu_si512(wb + s * 64 + 64), broadcast4(xq + s * 4 + 4));
      }
      dot[0] = _mm512_add_epi32(dot[0], odd);
    } else {
      for (int s = 0; s < 8; ++s) {
        const __m512i w = _mm512_loadu_si512(wb + s * 64);
        for (int i = 0; i < MR; ++i)
          dot[i] = _mm512_dpbusd_epi32(dot[i], w, broadcast4(a.q.data() + (i0 + i) * pad + b * kActBlock + s * 4));
      }
    }
    __m512 sw = _mm512_setzero_ps();
    if constexpr (Grouped) sw = _mm512_loadu_ps(walk.scales);
    for (int i = 0; i < MR; ++i) {
      const __m512 dx = _mm512_set1_ps(a.scale[size_t((i0 + i) * a.blocks + b)]);
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[i]), Grouped ? _mm512_mul_ps(sw, dx) : dx, acc[i]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    if constexpr (!Grouped) acc[i] = _mm512_mul_ps(acc[i], _mm512_loadu_ps(channel_scales));
    _mm512_storeu_ps(out[i], acc[i]);
  }
}

template <bool Grouped>
void run(const QuantizedActs& a, const Int8Weights& w, int64_t cols, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  constexpr int MR = 8;  // activation rows per tile: 8 int32 + 8 f32 accumulators
  walk_panel_tiles<MR>(a.n, a.blocks * kActBlock, w.panels, int8_panel_bytes(cols, w.group), y, ldy, r0, r1,
                       [&](auto m, int64_t i, const uint8_t* panel, int64_t row, float (*out)[kPanelRows]) {
                         panel_tile<decltype(m)::value, Grouped>(a, i, panel, w.group,
                                                                 Grouped ? nullptr : w.channel_scales + row, out);
                       });
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
