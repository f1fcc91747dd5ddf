#include "kernels/cpu/matmul.hpp"

#include <cstring>

namespace hpcinfer::kernels {
namespace {

typedef float v16f __attribute__((vector_size(64)));
typedef uint16_t v16h __attribute__((vector_size(32)));
typedef uint32_t v16u __attribute__((vector_size(64)));

inline __attribute__((always_inline)) v16f load(const float* p) {
  v16f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline __attribute__((always_inline)) v16f load(const uint16_t* p) {  // 16 bf16 -> 16 f32
  v16h h;
  std::memcpy(&h, p, sizeof h);
  v16u u = __builtin_convertvector(h, v16u) << 16;
  v16f f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
inline __attribute__((always_inline)) float scalar(const float* p, int64_t k) { return p[k]; }
inline __attribute__((always_inline)) float scalar(const uint16_t* p, int64_t k) {
  uint32_t u = uint32_t(p[k]) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Fixed-order horizontal sum: pairwise halves, the same for every element.
inline __attribute__((always_inline)) float hsum(v16f v) {
  float a[16];
  std::memcpy(a, &v, sizeof a);
  float s8[8], s4[4];
  for (int i = 0; i < 8; ++i) s8[i] = a[i] + a[i + 8];
  for (int i = 0; i < 4; ++i) s4[i] = s8[i] + s8[i + 4];
  return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

// MR activation rows x NR weight rows tile: acc[i][j] = dot(x_i, w_j).
template <int MR, int NR, typename W>
inline __attribute__((always_inline)) void tile(const float* x, int64_t cols, const W* w, float* y, int64_t ldy) {
  v16f acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = v16f{};
  const int64_t cv = cols / 16 * 16;
  for (int64_t k = 0; k < cv; k += 16) {
    v16f wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = load(w + j * cols + k);
    for (int i = 0; i < MR; ++i) {
      v16f xv = load(x + i * cols + k);
      for (int j = 0; j < NR; ++j) acc[i][j] += xv * wv[j];
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      float s = hsum(acc[i][j]);
      for (int64_t k = cv; k < cols; ++k) s += x[i * cols + k] * scalar(w + j * cols, k);
      y[i * ldy + j] = s;
    }
}

template <typename W>
inline __attribute__((always_inline)) void matmul_impl(const float* x, int64_t n, const W* w, int64_t cols, float* y,
                                                       int64_t ldy, int64_t r0, int64_t r1) {
  constexpr int MR = 4, NR = 4;
  int64_t r = r0;
  for (; r + NR <= r1; r += NR) {
    int64_t i = 0;
    for (; i + MR <= n; i += MR) tile<MR, NR>(x + i * cols, cols, w + r * cols, y + i * ldy + r, ldy);
    for (; i < n; ++i) tile<1, NR>(x + i * cols, cols, w + r * cols, y + i * ldy + r, ldy);
  }
  for (; r < r1; ++r) {
    int64_t i = 0;
    for (; i + MR <= n; i += MR) tile<MR, 1>(x + i * cols, cols, w + r * cols, y + i * ldy + r, ldy);
    for (; i < n; ++i) tile<1, 1>(x + i * cols, cols, w + r * cols, y + i * ldy + r, ldy);
  }
}

}  // namespace

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
void matmul_f32(const float* x, int64_t n, const float* w, int64_t cols, float* y, int64_t ldy, int64_t row_begin,
                int64_t row_end) {
  matmul_impl(x, n, w, cols, y, ldy, row_begin, row_end);
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
void matmul_bf16(const float* x, int64_t n, const uint16_t* w, int64_t cols, float* y, int64_t ldy,
                 int64_t row_begin, int64_t row_end) {
  matmul_impl(x, n, w, cols, y, ldy, row_begin, row_end);
}

}  // namespace hpcinfer::kernels
