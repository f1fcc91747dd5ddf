// The f32 matmul kernel's body (row layout) and the vector types every per-ISA kernel shares, compiled once per
// instruction set (matmul_avx512.cpp with -march=x86-64-v4, matmul_avx2.cpp with -march=x86-64-v3,
// matmul_generic.cpp with the baseline) and picked at run time by matmul.cpp. Everything here has internal linkage
// (anonymous namespace) on purpose: each ISA's translation unit keeps its own copy, so the linker can never hand the
// AVX-512 body of an inline function to the baseline path.
// Only the ISA of the instructions differs between the copies, never the arithmetic order, so every path gives
// the same results up to FMA contraction (x86-64-v3/v4 fuse, the baseline may not).
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/cpu/convert.hpp"
#include "kernels/cpu/matmul.hpp"
#include "kernels/cpu/matmul_isa.hpp"

namespace hpcinfer::kernels {
namespace {

// One vector = the ISA's native width (GCC lowers wider generic vectors through memory): kLanes floats.
#if defined(__AVX512F__)
constexpr int kLanes = 16;
#elif defined(__AVX2__)
constexpr int kLanes = 8;
#else
constexpr int kLanes = 4;
#endif
typedef float vf __attribute__((vector_size(kLanes * 4)));
typedef uint16_t vh __attribute__((vector_size(kLanes * 2)));  // kLanes bf16 bit patterns
typedef uint32_t vu __attribute__((vector_size(kLanes * 4)));
#define HPCI_INLINE inline __attribute__((always_inline))

HPCI_INLINE vf load_f32(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Weight-row policies: rows of W as seen from row `base`. load(j, k) = W[base + j, k .. k + kLanes) as f32;
// at(j, k) = one value (tails); finish(j, s) = what the finished dot product of row j becomes.
struct F32Rows {
  const float* w;
  int64_t cols;
  HPCI_INLINE F32Rows at_row(int64_t r) const { return {w + r * cols, cols}; }
  HPCI_INLINE vf load(int j, int64_t k) const { return load_f32(w + j * cols + k); }
  HPCI_INLINE float at(int j, int64_t k) const { return w[j * cols + k]; }
  HPCI_INLINE float finish(int, float s) const { return s; }
};

// Fixed-order horizontal sum: pairwise halves, the same for every element.
HPCI_INLINE float hsum(vf v) {
  float a[kLanes];
  std::memcpy(a, &v, sizeof a);
  for (int width = kLanes / 2; width >= 1; width /= 2)
    for (int i = 0; i < width; ++i) a[i] += a[i + width];
  return a[0];
}

// MR activation rows x NR weight rows tile: y[i][j] = finish(j, dot(x_i, w_j)).
template <int MR, int NR, typename Rows>
HPCI_INLINE void tile(const float* x, int64_t cols, const Rows& w, float* y, int64_t ldy) {
  vf acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = vf{};
  const int64_t cv = cols / kLanes * kLanes;
  for (int64_t k = 0; k < cv; k += kLanes) {
    vf wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = w.load(j, k);
    for (int i = 0; i < MR; ++i) {
      vf xv = load_f32(x + i * cols + k);
      for (int j = 0; j < NR; ++j) acc[i][j] += xv * wv[j];
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      float s = hsum(acc[i][j]);
      for (int64_t k = cv; k < cols; ++k) s += x[i * cols + k] * w.at(j, k);
      y[i * ldy + j] = w.finish(j, s);
    }
}

// Tile shapes, sized to the register file (accumulators + weight slices + one activation slice must fit):
// AVX-512 has 32 x 512-bit registers, AVX2 16 x 256-bit, SSE2 16 x 128-bit (one vf each).
// Decode (n < MR) streams NR1 weight rows at once (independent FMA chains, one prefetch stream each); batches
// reuse each loaded weight slice for MR activation rows.
#if defined(__AVX512F__)
constexpr int kMR = 4, kNR = 4, kNR1 = 8;
#elif defined(__AVX2__)
constexpr int kMR = 2, kNR = 2, kNR1 = 4;
#else
constexpr int kMR = 1, kNR = 2, kNR1 = 2;
#endif

template <typename Rows>
HPCI_INLINE void matmul_impl(const float* x, int64_t n, const Rows& w, int64_t cols, float* y, int64_t ldy,
                             int64_t r0, int64_t r1) {
  constexpr int MR = kMR, NR = kNR, NR1 = kNR1;
  int64_t r = r0;
  if (n < MR || MR == 1) {
    for (; r + NR1 <= r1; r += NR1)
      for (int64_t i = 0; i < n; ++i) tile<1, NR1>(x + i * cols, cols, w.at_row(r), y + i * ldy + r, ldy);
  }
  for (; r + NR <= r1; r += NR) {
    int64_t i = 0;
    for (; i + MR <= n; i += MR) tile<MR, NR>(x + i * cols, cols, w.at_row(r), y + i * ldy + r, ldy);
    for (; i < n; ++i) tile<1, NR>(x + i * cols, cols, w.at_row(r), y + i * ldy + r, ldy);
  }
  for (; r < r1; ++r) {
    int64_t i = 0;
    for (; i + MR <= n; i += MR) tile<MR, 1>(x + i * cols, cols, w.at_row(r), y + i * ldy + r, ldy);
    for (; i < n; ++i) tile<1, 1>(x + i * cols, cols, w.at_row(r), y + i * ldy + r, ldy);
  }
}

void matmul_f32_entry(const float* x, int64_t n, const float* w, int64_t cols, float* y, int64_t ldy, int64_t r0,
                      int64_t r1) {
  matmul_impl(x, n, F32Rows{w, cols}, cols, y, ldy, r0, r1);
}

}  // namespace
}  // namespace hpcinfer::kernels
