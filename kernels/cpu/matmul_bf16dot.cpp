// bf16 x bf16 dot products on AVX512-BF16 (compiled with -march=x86-64-v4 -mavx512bf16; called only where the CPU
// has it, see bf16dot_supported). Activations are rounded to bf16 (nearest even) per call; one `vdpbf16ps` takes a
// 64-byte pair panel slice (16 rows x 2 inputs) against 2 activation values broadcast: twice the f32 FMA rate.
// Per output: two f32 accumulators (even and odd input pairs, ascending), added at the end, whatever n.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/matmul.hpp"

namespace hpcinfer::kernels {
namespace {

#define HPCI_INLINE inline __attribute__((always_inline))

// Rows of x rounded to bf16 into [n][pairs * 2] (zero-padded), 32 values per step.
void round_acts(const float* x, int64_t n, int64_t cols, std::vector<uint16_t>& out) {
  const int64_t padded = (cols + 1) / 2 * 2;
  out.assign(size_t(n * padded), 0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < cols; c += 32) {
      const int64_t m = std::min<int64_t>(32, cols - c);
      const __mmask16 lo = __mmask16(m >= 16 ? 0xffff : (1u << m) - 1);
      const __mmask16 hi = __mmask16(m >= 32 ? 0xffff : m <= 16 ? 0 : (1u << (m - 16)) - 1);
      const __m512 a = _mm512_maskz_loadu_ps(lo, x + i * cols + c);
      const __m512 b = _mm512_maskz_loadu_ps(hi, x + i * cols + c + 16);
      const __m512i packed = __m512i(_mm512_cvtne2ps_pbh(b, a));  // lanes 0-15 from a, 16-31 from b
      _mm512_mask_storeu_epi16(out.data() + i * padded + c, __mmask32(m >= 32 ? 0xffffffffu : (1u << m) - 1), packed);
    }
}

// out[q][i][0..16) = panel q's 16 rows against activation rows i < MR, for NP consecutive panels (stride
// panel_stride): NP weight vectors per input pair share each broadcast activation pair.
template <int MR, int NP>
HPCI_INLINE void tile(const uint16_t* xb, int64_t padded, const uint16_t* panel, int64_t panel_stride,
                      float (*out)[MR][kPanelRows]) {
  __m512 even[NP][MR], odd[NP][MR];
  for (int q = 0; q < NP; ++q)
    for (int i = 0; i < MR; ++i) even[q][i] = odd[q][i] = _mm512_setzero_ps();
  const int64_t pairs = padded / 2;
  auto step = [&](__m512 (*acc)[MR], int64_t p) __attribute__((always_inline)) {
    __m512bh w[NP];
    for (int q = 0; q < NP; ++q) w[q] = __m512bh(_mm512_loadu_si512(panel + q * panel_stride + p * 2 * kPanelRows));
    for (int i = 0; i < MR; ++i) {
      int32_t x2;
      std::memcpy(&x2, xb + i * padded + 2 * p, 4);
      const __m512bh xv = __m512bh(_mm512_set1_epi32(x2));
      for (int q = 0; q < NP; ++q) acc[q][i] = _mm512_dpbf16_ps(acc[q][i], w[q], xv);
    }
  };
  int64_t p = 0;
  for (; p + 2 <= pairs; p += 2) step(even, p), step(odd, p + 1);
  if (p < pairs) step(even, p);
  for (int q = 0; q < NP; ++q)
    for (int i = 0; i < MR; ++i) _mm512_storeu_ps(out[q][i], _mm512_add_ps(even[q][i], odd[q][i]));
}

template <int MR, int NP>
HPCI_INLINE void rows(const uint16_t* xb, int64_t padded, const uint16_t* panel, float* y, int64_t ldy, int64_t row,
                      int64_t r1) {
  float out[NP][MR][kPanelRows];
  tile<MR, NP>(xb, padded, panel, padded * kPanelRows, out);
  for (int q = 0; q < NP; ++q) {
    const int64_t valid = std::min(kPanelRows, r1 - row - q * kPanelRows);
    for (int i = 0; i < MR; ++i)
      std::memcpy(y + i * ldy + row + q * kPanelRows, out[q][i], size_t(valid) * sizeof(float));
  }
}

}  // namespace

void matmul_bf16dot_avx512(const float* x, int64_t n, const uint16_t* panels, int64_t cols, float* y, int64_t ldy,
                           int64_t r0, int64_t r1) {
  constexpr int MR = 6;  // batches: 6 activation rows x 2 panels (24 accumulators); decode: 1 x 1
  thread_local std::vector<uint16_t> xb;  // each thread rounds the (small) activations itself
  round_acts(x, n, cols, xb);
  const int64_t padded = (cols + 1) / 2 * 2;
  const int64_t chunk = std::max<int64_t>(MR, (int64_t(256) << 10) / (padded * 2) / MR * MR);
  for (int64_t i0 = 0; i0 < n; i0 += chunk) {
    const int64_t i1 = std::min(n, i0 + chunk);
    for (int64_t row = r0; row < r1; row += 2 * kPanelRows) {
      const uint16_t* panel = panels + (row / kPanelRows) * padded * kPanelRows;
      const bool two = row + kPanelRows < r1;
      int64_t i = i0;
      if (two) {
        for (; i + MR <= i1; i += MR) rows<MR, 2>(xb.data() + i * padded, padded, panel, y + i * ldy, ldy, row, r1);
        if (i + 4 <= i1) rows<4, 2>(xb.data() + i * padded, padded, panel, y + i * ldy, ldy, row, r1), i += 4;
        if (i + 2 <= i1) rows<2, 2>(xb.data() + i * padded, padded, panel, y + i * ldy, ldy, row, r1), i += 2;
        for (; i < i1; ++i) rows<1, 2>(xb.data() + i * padded, padded, panel, y + i * ldy, ldy, row, r1);
      } else {
        for (; i + MR <= i1; i += MR) rows<MR, 1>(xb.data() + i * padded, padded, panel, y + i * ldy, ldy, row, r1);
        for (; i < i1; ++i) rows<1, 1>(xb.data() + i * padded, padded, panel, y + i * ldy, ldy, row, r1);
      }
    }
  }
}

}  // namespace hpcinfer::kernels
