// The int4 matmul on AVX-512 VNNI over weight panels (compiled with -march=x86-64-v4 -mavx512vnni; called only where
// the CPU has both, see matmul_int4.cpp). A panel block's 64-byte chunk t holds 16 rows x 4 inputs twice: its low
// nibbles are inputs 4t .. 4t + 3, its high nibbles inputs 16 + 4t ..; one AND (and one shift) makes each a
// vpdpbusd operand (u8 0..15) against 4 int8 activations broadcast. Eight vpdpbusd make a block's exact integer dot
// for 16 rows, seeded with -8 * sum(xq); then acc = fma(float(dot), f32(d) * x_scale, acc) (blocks with a minimum:
// the dot unseeded, then acc = fma(float(sum(xq)), f32(m) * x_scale, acc) too): the portable arithmetic.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/matmul_int4.hpp"
#include "kernels/cpu/panel_tiles.hpp"

namespace hpcinfer::kernels::int4_detail {
namespace {

#define HPCI_INLINE inline __attribute__((always_inline))

HPCI_INLINE __m512i broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// out[i][0..16) = the panel's 16 rows against activation rows i0 + i, i < MR.
template <int MR, bool HasMin>
HPCI_INLINE void panel_tile(const QuantizedActs& a, int64_t i0, const uint8_t* panel, float (*out)[kPanelRows]) {
  constexpr int64_t kBlockBytes = int4_panel_block_bytes(HasMin), kNibbles = nibbles_at(HasMin);
  const int64_t pad = a.blocks * 32;
  const __m512i low = _mm512_set1_epi8(0x0f);
  __m512 acc[MR];
  for (int i = 0; i < MR; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < a.blocks; ++b) {
    const uint8_t* pb = panel + b * kBlockBytes;
    __m512i dot[MR], dot_hi[MR];
    for (int i = 0; i < MR; ++i) {
      dot[i] = _mm512_set1_epi32(dot_seed(a, i0 + i, b, HasMin));
      dot_hi[i] = _mm512_setzero_si512();  // a second chain: integer sums are exact in any order
    }
    for (int t = 0; t < 4; ++t) {
      const __m512i v = _mm512_loadu_si512(pb + kNibbles + t * 64);
      const __m512i lo = _mm512_and_si512(v, low), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
      for (int i = 0; i < MR; ++i) {
        const int8_t* xq = a.q.data() + (i0 + i) * pad + b * 32;
        dot[i] = _mm512_dpbusd_epi32(dot[i], lo, broadcast4(xq + 4 * t));
        dot_hi[i] = _mm512_dpbusd_epi32(dot_hi[i], hi, broadcast4(xq + 16 + 4 * t));
      }
    }
    const __m512 sw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(pb)));
    __m512 sm = _mm512_setzero_ps();
    if constexpr (HasMin) sm = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(pb + kMinsAt)));
    for (int i = 0; i < MR; ++i) {
      const __m512 dx = _mm512_set1_ps(a.scale[size_t((i0 + i) * a.blocks + b)]);
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(dot[i], dot_hi[i])), _mm512_mul_ps(sw, dx), acc[i]);
      if constexpr (HasMin)
        acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(act_sum(a, i0 + i, b)), _mm512_mul_ps(sm, dx), acc[i]);
    }
  }
  for (int i = 0; i < MR; ++i) _mm512_storeu_ps(out[i], acc[i]);
}

template <bool HasMin>
void run(const QuantizedActs& a, const uint8_t* panels, int64_t cols, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  constexpr int MR = 6;  // activation rows per tile: 12 int32 + 6 f32 accumulators, 2 operands, 1 mask
  walk_panel_tiles<MR>(a.n, a.blocks * 32, panels, int4_panel_bytes(cols, HasMin), y, ldy, r0, r1,
                       [&](auto m, int64_t i, const uint8_t* panel, int64_t, float (*out)[kPanelRows]) {
                         panel_tile<decltype(m)::value, HasMin>(a, i, panel, out);
                       });
}

}  // namespace

void matmul_int4_vnni(const QuantizedActs& a, const Int4Weights& w, int64_t cols, float* y, int64_t ldy, int64_t r0,
                      int64_t r1) {
  if (w.has_min)
    run<true>(a, w.panels, cols, y, ldy, r0, r1);
  else
    run<false>(a, w.panels, cols, y, ldy, r0, r1);
}

}  // namespace hpcinfer::kernels::int4_detail
