// int4 matmul internals shared by the instruction-set variants (kernels/cpu/matmul_int4*.cpp); the public API and
// the layouts are in kernels/cpu/matmul.hpp (matmul_int4).
//
// W4A8: the activations are quantized exactly as for int8 (int8_detail::QuantizedActs: blocks of 32, symmetric,
// scale = max|x| / 127). Weights are stored as unsigned nibbles u = q + 8 (0..15), so the unsigned x signed dot
// products (VNNI vpdpbusd, AVX2 vpmaddubsw) apply directly: sum((u - 8) * xq) = sum(u * xq) - 8 * sum(xq), and the
// correction -8 * sum(xq) is the int8 one (-128 * sum(xq)) divided by 16, exactly.
#pragma once

#include <cstdint>

#include "kernels/cpu/matmul.hpp"
#include "kernels/cpu/matmul_int8.hpp"

namespace hpcinfer::kernels::int4_detail {

using int8_detail::QuantizedActs;

inline constexpr int64_t kPanelBlockBytes = 2 * kPanelRows + 4 * 64;  // 16 f16 scales + 4 chunks of 64 bytes
inline int32_t correction(const QuantizedActs& a, int64_t i, int64_t b) {
  return a.correction[size_t(i * a.blocks + b)] / 16;  // -8 * sum(xq): exact (a multiple of 128 divided by 16)
}

// The kernels read the panel layout (kernels/cpu/matmul.hpp) and give bitwise the same results.
void matmul_int4_generic(const QuantizedActs& a, const uint8_t* panels, int64_t cols, float* y, int64_t ldy,
                         int64_t r0, int64_t r1);
void matmul_int4_vnni(const QuantizedActs& a, const uint8_t* panels, int64_t cols, float* y, int64_t ldy,
                      int64_t r0, int64_t r1);
void matmul_int4_avx2(const QuantizedActs& a, const uint8_t* panels, int64_t cols, float* y, int64_t ldy,
                      int64_t r0, int64_t r1);

}  // namespace hpcinfer::kernels::int4_detail
