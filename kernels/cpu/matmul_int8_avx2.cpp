// The int8 matmul on AVX2 (compiled with -march=x86-64-v3; the path for CPUs without AVX-512 VNNI, see
// matmul_int8.cpp). AVX2 has no u8 x s8 dot product into int32; vpmaddubsw multiplies u8 x s8 into 16-bit pair sums
// that saturate, so it gets signed weights by their magnitude: with q = u8 - 128 (one XOR), |q| (vpabsb, 0..128 as
// u8) against sign(q) x xq (vpsignb) gives q x xq per byte and pair sums of at most 2 x 128 x 127 = 32512: exact.
// vpmaddwd by ones folds the pairs into each row's int32 (8 rows per 256-bit half of a 64-byte slice). The dot is
// sum(q x xq) directly, what the portable kernel's sum(u8 x xq) - 128 x sum(xq) is; then
// acc = fma(float(dot), w_scale * x_scale, acc): the portable kernel's arithmetic, bitwise the same results.
// Two multiplying instructions per 32 products (vpmaddubsw, vpmaddwd): twice the products per instruction of the
// 16-bit widening it replaces. Prefill tiles take MR activation rows per pass over a panel (|q| computed once).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/matmul_int8.hpp"
#include "kernels/cpu/panel_tiles.hpp"

namespace hpcinfer::kernels::int8_detail {
namespace {

#define HPCI_INLINE inline __attribute__((always_inline))

HPCI_INLINE __m256i broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// out[i][0..16) = the panel's 16 rows against activation rows i0 + i, i < MR; rows 8h .. 8h + 7 in half h.
template <int MR, bool Grouped>
HPCI_INLINE void panel_tile(const QuantizedActs& a, int64_t i0, const uint8_t* panel, int64_t group,
                            const float* channel_scales, float (*out)[kPanelRows]) {
  const int64_t pad = a.blocks * kActBlock;
  const __m256i flip = _mm256_set1_epi8(char(0x80)), ones = _mm256_set1_epi16(1);
  __m256 acc[MR][2];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  PanelWalk walk(panel, group);
  for (int64_t b = 0; b < a.blocks; ++b) {
    const uint8_t* wb = walk.next();
    __m256i dot[MR][2];
    for (int i = 0; i < MR; ++i) dot[i][0] = dot[i][1] = _mm256_setzero_si256();
    for (int s = 0; s < 8; ++s) {
      __m256i q[2], mag[2];
      for (int h = 0; h < 2; ++h) {
        q[h] = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + s * 64 + 32 * h)), flip);
        mag[h] = _mm256_abs_epi8(q[h]);
      }
      for (int i = 0; i < MR; ++i) {
        const __m256i x = broadcast4(a.q.data() + (i0 + i) * pad + b * kActBlock + s * 4);
        for (int h = 0; h < 2; ++h) {
          const __m256i pairs = _mm256_maddubs_epi16(mag[h], _mm256_sign_epi8(x, q[h]));
          dot[i][h] = _mm256_add_epi32(dot[i][h], _mm256_madd_epi16(pairs, ones));
        }
      }
    }
    __m256 sw[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    if constexpr (Grouped)
      for (int h = 0; h < 2; ++h) sw[h] = _mm256_loadu_ps(walk.scales + 8 * h);
    for (int i = 0; i < MR; ++i) {
      const __m256 dx = _mm256_set1_ps(a.scale[size_t((i0 + i) * a.blocks + b)]);
      for (int h = 0; h < 2; ++h)
        acc[i][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[i][h]), Grouped ? _mm256_mul_ps(sw[h], dx) : dx, acc[i][h]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int h = 0; h < 2; ++h) {
      if constexpr (!Grouped) acc[i][h] = _mm256_mul_ps(acc[i][h], _mm256_loadu_ps(channel_scales + 8 * h));
      _mm256_storeu_ps(out[i] + 8 * h, acc[i][h]);
    }
}

template <bool Grouped>
void run(const QuantizedActs& a, const Int8Weights& w, int64_t cols, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  constexpr int MR = 2;  // activation rows per tile: 4 int32 + 4 f32 accumulators, 4 weight operands (16 registers)
  walk_panel_tiles<MR>(a.n, a.blocks * kActBlock, w.panels, int8_panel_bytes(cols, w.group), y, ldy, r0, r1,
                       [&](auto m, int64_t i, const uint8_t* panel, int64_t row, float (*out)[kPanelRows]) {
                         panel_tile<decltype(m)::value, Grouped>(a, i, panel, w.group,
                                                                 Grouped ? nullptr : w.channel_scales + row, out);
                       });
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
