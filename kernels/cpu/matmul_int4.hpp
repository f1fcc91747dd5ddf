// int4 matmul internals shared by the instruction-set variants (kernels/cpu/matmul_int4*.cpp); the public API and
// the layouts are in kernels/cpu/matmul.hpp (matmul_int4).
//
// W4A8: the activations are quantized exactly as for int8 (int8_detail::QuantizedActs: blocks of 32, symmetric,
// scale = max|x| / 127). Weights are unsigned nibbles u (0..15), so the unsigned x signed dot products (VNNI
// vpdpbusd, AVX2 vpmaddubsw) apply directly. Symmetric blocks: sum((u - 8) * xq) = sum(u * xq) - 8 * sum(xq), the
// correction -8 * sum(xq) being the int8 one (-128 * sum(xq)) divided by 16, exactly. Blocks with a minimum m:
// sum((u d + m) x) = d sx sum(u * xq) + m sx sum(xq), with sum(xq) = the int8 correction / -128.
#pragma once

#include <cstdint>

#include "kernels/cpu/matmul.hpp"
#include "kernels/cpu/matmul_int8.hpp"

namespace hpcinfer::kernels::int4_detail {

using int8_detail::QuantizedActs;

// Where a panel block's parts start: 16 f16 d, [16 f16 m,] then the 4 nibble chunks.
inline constexpr int64_t kMinsAt = 2 * kPanelRows;
inline constexpr int64_t nibbles_at(bool has_min) { return (has_min ? 4 : 2) * kPanelRows; }
// What seeds a block's integer dot: -8 * sum(xq) for symmetric blocks (exact: a multiple of 128 divided by 16),
// nothing with minimums (their sum(xq) term is added in f32).
inline int32_t dot_seed(const QuantizedActs& a, int64_t i, int64_t b, bool has_min) {
  return has_min ? 0 : a.correction[size_t(i * a.blocks + b)] / 16;
}
inline float act_sum(const QuantizedActs& a, int64_t i, int64_t b) {  // sum(xq) of the block, exact in f32
  return float(a.correction[size_t(i * a.blocks + b)] / -128);
}

// The kernels read the panel layout (kernels/cpu/matmul.hpp) and give bitwise the same results.
void matmul_int4_generic(const QuantizedActs& a, const Int4Weights& w, int64_t cols, float* y, int64_t ldy,
                         int64_t r0, int64_t r1);
void matmul_int4_vnni(const QuantizedActs& a, const Int4Weights& w, int64_t cols, float* y, int64_t ldy, int64_t r0,
                      int64_t r1);
void matmul_int4_avx2(const QuantizedActs& a, const Int4Weights& w, int64_t cols, float* y, int64_t ldy, int64_t r0,
                      int64_t r1);

}  // namespace hpcinfer::kernels::int4_detail
