// The bf16 matmul kernel's body over weight panels (kernels/cpu/matmul.hpp: 16 rows interleaved, [cols][16] per
// panel), compiled once per instruction set like matmul_tiles.hpp. A panel's 16 rows at one input are kVecs native
// vectors (AVX-512: 1, AVX2: 2, SSE2: 4); an activation value is broadcast against them, so each lane accumulates
// one output row and no horizontal sum is needed.
// Arithmetic per output (every ISA, every n): two f32 accumulators, even and odd inputs in ascending order, added
// at the end. Two chains hide the FMA latency at decode (one activation row); batches add independent chains.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "kernels/cpu/matmul_tiles.hpp"

namespace hpcinfer::kernels {
namespace {

constexpr int kVecs = int(kPanelRows) / kLanes;

// kLanes bf16 -> f32: widen and shift, exact. (Intrinsics where present: GCC splits the generic conversion in two.)
HPCI_INLINE vf widen_bf16(const uint16_t* p) {
#if defined(__AVX512F__)
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return vf(_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
#elif defined(__AVX2__)
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return vf(_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)));
#else
  vh h;
  std::memcpy(&h, p, sizeof h);
  vu u = __builtin_convertvector(h, vu) << 16;
  vf f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

// acc[i][v] += x[i][k] * (the panel's 16 rows at input k), i < MR.
template <int MR>
HPCI_INLINE void panel_step_bf16(vf (*acc)[kVecs], const float* x, int64_t cols, const uint16_t* panel, int64_t k) {
  vf w[kVecs];
  for (int v = 0; v < kVecs; ++v) w[v] = widen_bf16(panel + k * kPanelRows + v * kLanes);
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < kVecs; ++v) acc[i][v] += w[v] * x[i * cols + k];  // the scalar is broadcast
}

// out[i][0..16) = the 16 rows of `panel` against activation rows x + i * cols, i < MR.
template <int MR>
HPCI_INLINE void panel_tile_bf16(const float* x, int64_t cols, const uint16_t* panel, float (*out)[kPanelRows]) {
  vf even[MR][kVecs], odd[MR][kVecs];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < kVecs; ++v) even[i][v] = odd[i][v] = vf{};
  int64_t k = 0;
  for (; k + 2 <= cols; k += 2) {
    panel_step_bf16<MR>(even, x, cols, panel, k);
    panel_step_bf16<MR>(odd, x, cols, panel, k + 1);
  }
  if (k < cols) panel_step_bf16<MR>(even, x, cols, panel, k);
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < kVecs; ++v) {
      const vf s = even[i][v] + odd[i][v];
      std::memcpy(&out[i][v * kLanes], &s, sizeof s);
    }
}

// Activation rows per tile, sized to the register file: MR x 2 x kVecs accumulators + kVecs weights + 1 broadcast.
#if defined(__AVX512F__)
constexpr int kPanelMR = 8;
#elif defined(__AVX2__)
constexpr int kPanelMR = 3;  // 12 accumulators + 2 weights + 1 broadcast of 16 registers: 1.1-1.2x MR = 2 at n = 64
#else
constexpr int kPanelMR = 1;
#endif

template <int MR>
HPCI_INLINE void panel_rows_bf16(const float* x, int64_t cols, const uint16_t* panel, float* y, int64_t ldy,
                                 int64_t row0, int64_t valid) {
  float out[MR][kPanelRows];
  panel_tile_bf16<MR>(x, cols, panel, out);
  for (int i = 0; i < MR; ++i) std::memcpy(y + i * ldy + row0, out[i], size_t(valid) * sizeof(float));
}

void matmul_bf16_entry(const float* x, int64_t n, const uint16_t* panels, int64_t cols, float* y, int64_t ldy,
                       int64_t r0, int64_t r1) {
  // Activation rows in chunks that stay in L2 while the thread's panels stream past them.
  const int64_t chunk = std::max<int64_t>(kPanelMR, (int64_t(256) << 10) / (cols * 4) / kPanelMR * kPanelMR);
  for (int64_t i0 = 0; i0 < n; i0 += chunk) {
    const int64_t i1 = std::min(n, i0 + chunk);
    for (int64_t row = r0; row < r1; row += kPanelRows) {
      const uint16_t* panel = panels + (row / kPanelRows) * cols * kPanelRows;
      const int64_t valid = std::min(kPanelRows, r1 - row);
      int64_t i = i0;
      for (; i + kPanelMR <= i1; i += kPanelMR)
        panel_rows_bf16<kPanelMR>(x + i * cols, cols, panel, y + i * ldy, ldy, row, valid);
      for (; i < i1; ++i) panel_rows_bf16<1>(x + i * cols, cols, panel, y + i * ldy, ldy, row, valid);
    }
  }
}

}  // namespace
}  // namespace hpcinfer::kernels
