// Scalar type conversions and row dequantization (GGUF block types -> f32). Used by loaders and weight formats.
#pragma once

#include <cstdint>
#include <cstring>

#include "hpcinfer/tensor.hpp"

namespace hpcinfer::kernels {

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// out[0..n) = values [col_begin, col_begin + n) of one row stored as `dtype` (row points at the row's first byte).
// Block types: a range that splits 32-value blocks is cut from the dequantized covering blocks (rows hold whole blocks).
void dequantize_row(DType dtype, const void* row, int64_t col_begin, int64_t n, float* out);
// FP8 E4M3 ("fn": 0x7F / 0xFF are NaN, no infinities; bias 7; subnormals below 2^-6).
float e4m3fn_to_f32(uint8_t b);

}  // namespace hpcinfer::kernels
