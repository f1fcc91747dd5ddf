// The int4 matmul on AVX2 (compiled with -march=x86-64-v3; the path for CPUs without AVX-512 VNNI, see
// matmul_int4.cpp). Each 32-byte half of a panel chunk is 8 rows x 4 inputs (low nibbles) and 8 rows x 4 other
// inputs (high nibbles). vpmaddubsw of the nibbles (u8 0..15) against 4 int8 activations broadcast gives 16-bit pair
// sums of at most 2 x 15 x 127 = 3810, so a block's 8 of them add in 16 bits without overflow (at most 30480); one
// vpmaddwd by ones folds the pairs into each row's int32 dot, then -8 * sum(xq) and
// acc = fma(float(dot), f32(d) * x_scale, acc) (with minimums: no -8 * sum(xq), and acc = fma(float(sum(xq)),
// f32(m) * x_scale, acc) after it): the portable kernel's arithmetic, bitwise the same results.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/matmul_int4.hpp"
#include "kernels/cpu/panel_tiles.hpp"

namespace hpcinfer::kernels::int4_detail {
namespace {

#define HPCI_INLINE inline __attribute__((always_inline))

HPCI_INLINE __m256i broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// out[i][0..16) = the panel's 16 rows against activation rows i0 + i, i < MR; rows 8h .. 8h + 7 in half h.
template <int MR, bool HasMin>
HPCI_INLINE void panel_tile(const QuantizedActs& a, int64_t i0, const uint8_t* panel, float (*out)[kPanelRows]) {
  constexpr int64_t kBlockBytes = int4_panel_block_bytes(HasMin), kNibbles = nibbles_at(HasMin);
  const int64_t pad = a.blocks * 32;
  const __m256i low = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
  __m256 acc[MR][2];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t b = 0; b < a.blocks; ++b) {
    const uint8_t* pb = panel + b * kBlockBytes;
    __m256i pairs[MR][2];
    for (int i = 0; i < MR; ++i) pairs[i][0] = pairs[i][1] = _mm256_setzero_si256();
    for (int t = 0; t < 4; ++t) {
      __m256i lo[2], hi[2];
      for (int h = 0; h < 2; ++h) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pb + kNibbles + t * 64 + 32 * h));
        lo[h] = _mm256_and_si256(v, low);
        hi[h] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
      }
      for (int i = 0; i < MR; ++i) {
        const int8_t* xq = a.q.data() + (i0 + i) * pad + b * 32;
        const __m256i xl = broadcast4(xq + 4 * t), xh = broadcast4(xq + 16 + 4 * t);
        for (int h = 0; h < 2; ++h) {
          pairs[i][h] = _mm256_add_epi16(pairs[i][h], _mm256_maddubs_epi16(lo[h], xl));
          pairs[i][h] = _mm256_add_epi16(pairs[i][h], _mm256_maddubs_epi16(hi[h], xh));
        }
      }
    }
    __m256 sw[2], sm[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int h = 0; h < 2; ++h) {
      sw[h] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pb + 16 * h)));
      if constexpr (HasMin) sm[h] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pb + kMinsAt + 16 * h)));
    }
    for (int i = 0; i < MR; ++i) {
      const __m256i corr = _mm256_set1_epi32(dot_seed(a, i0 + i, b, HasMin));
      const __m256 dx = _mm256_set1_ps(a.scale[size_t((i0 + i) * a.blocks + b)]);
      for (int h = 0; h < 2; ++h) {
        const __m256i dot = _mm256_add_epi32(_mm256_madd_epi16(pairs[i][h], ones), corr);
        acc[i][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(sw[h], dx), acc[i][h]);
        if constexpr (HasMin)
          acc[i][h] = _mm256_fmadd_ps(_mm256_set1_ps(act_sum(a, i0 + i, b)), _mm256_mul_ps(sm[h], dx), acc[i][h]);
      }
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int h = 0; h < 2; ++h) _mm256_storeu_ps(out[i] + 8 * h, acc[i][h]);
}

template <bool HasMin>
void run(const QuantizedActs& a, const uint8_t* panels, int64_t cols, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  constexpr int MR = 2;  // activation rows per tile: 4 x 16-bit pair sums, 4 f32 accumulators, 4 operands
  walk_panel_tiles<MR>(a.n, a.blocks * 32, panels, int4_panel_bytes(cols, HasMin), y, ldy, r0, r1,
                       [&](auto m, int64_t i, const uint8_t* panel, int64_t, float (*out)[kPanelRows]) {
                         panel_tile<decltype(m)::value, HasMin>(a, i, panel, out);
                       });
}

}  // namespace

void matmul_int4_avx2(const QuantizedActs& a, const Int4Weights& w, int64_t cols, float* y, int64_t ldy, int64_t r0,
                      int64_t r1) {
  if (w.has_min)
    run<true>(a, w.panels, cols, y, ldy, r0, r1);
  else
    run<false>(a, w.panels, cols, y, ldy, r0, r1);
}

}  // namespace hpcinfer::kernels::int4_detail
