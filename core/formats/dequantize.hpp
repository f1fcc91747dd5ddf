// Scalar conversions (f16/bf16 <-> f32) and row dequantization of the GGUF block types to f32, for loaders and
// converters (make-model --from). Reference scalar code: correctness first, not a hot path.
//
// Block layouts (32 values per block along a row, see hpcinfer/tensor.hpp):
//   Q8_0: f16 d, int8 q[32]           -> x[i] = d * q[i]
//   Q4_0: f16 d, u8 qs[16]            -> x[i] = d * ((qs[i] & 15) - 8), x[i+16] = d * ((qs[i] >> 4) - 8)
//   Q4_1: f16 d, f16 m, u8 qs[16]     -> x[i] = d * (qs[i] & 15) + m,   x[i+16] = d * (qs[i] >> 4) + m
#pragma once

#include <cstdint>

#include "hpcinfer/tensor.hpp"

namespace hpcinfer::formats {

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);  // round to nearest even; overflow -> inf; NaN stays NaN
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);  // round to nearest even; NaN stays NaN

// out[0..n) = the first n values of one row stored as `dtype` starting at `row`.
// For block types n must be a multiple of kQuantBlock. i8 is not a file type: throws std::invalid_argument.
void dequantize_row(DType dtype, const void* row, int64_t n, float* out);

// out[0..n) in `dtype` (f32, f16 or bf16 only; others throw std::invalid_argument) from f32 values.
void quantize_row_simple(DType dtype, const float* in, int64_t n, void* out);

}  // namespace hpcinfer::formats
