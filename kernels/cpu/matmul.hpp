// Dense matmul kernels: y[n, rows] = x[n, cols] * W[rows, cols]^T for f32 activations and f32, bf16 or int8 weights.
//
// Each call computes the output columns (weight rows) [row_begin, row_end) for all n activation rows; callers
// split rows across threads. Every output element is produced by the same arithmetic sequence whatever n and the
// row range are (one f32 vector accumulator per output, k ascending, fixed reduction order), so results do not
// depend on batch composition: a token gives bit-identical outputs alone or batched. Only the tile shape (how many
// weight rows / activation rows share loads) changes with n, and it does not touch the arithmetic.
// Dispatch on CPU features at first use: one copy per ISA (x86-64-v4 = AVX-512, v3 = AVX2+FMA, baseline), see
// matmul_tiles.hpp; HPCINFER_SIMD=avx2|generic forces a narrower one.
#pragma once

#include <cstdint>

namespace hpcinfer::kernels {

// x: [n, cols] row stride cols; w: [rows, cols] row stride cols; y: [n, ldy].
void matmul_f32(const float* x, int64_t n, const float* w, int64_t cols, float* y, int64_t ldy, int64_t row_begin,
                int64_t row_end);
// w holds bf16 bit patterns; accumulation in f32.
void matmul_bf16(const float* x, int64_t n, const uint16_t* w, int64_t cols, float* y, int64_t ldy,
                 int64_t row_begin, int64_t row_end);

// Symmetric int8 weights: W[r, c] = q[r, c] * scale[r, c / group]. Scales are f16 values (as in GGUF Q8_0) kept
// as f32 in memory: one broadcast load per 16-wide slice instead of a conversion (0.125 instead of 0.0625 bytes
// per weight at group 32). quantize_row_int8 writes q in [-127, 127]; Q8_0 blocks may hold -128, which works too.
//   group > 0: a power of two >= 16; scales: [rows, ceil(cols / group)] (the last group of a row may be short).
//              Each 16-wide slice of a row is dequantized to f32 (q * scale) and multiplied with f32 activations
//              (weight-only quantization).
//   group == 0: one scale per output channel; scales: [rows]; the scale multiplies the finished dot product.
struct Int8Weights {
  const int8_t* q;          // [rows, cols]
  const float* scales;      // [rows, ceil(cols / group)], or [rows] when group == 0
  int64_t group;
};
void matmul_int8(const float* x, int64_t n, const Int8Weights& w, int64_t cols, float* y, int64_t ldy,
                 int64_t row_begin, int64_t row_end);
// Quantizes one row of cols values (round to nearest, scale = max|x| / 127 rounded to f16): q[cols], and
// scales[ceil(cols / group)] (group > 0) or scales[1] (group == 0).
void quantize_row_int8(const float* x, int64_t cols, int64_t group, int8_t* q, float* scales);

}  // namespace hpcinfer::kernels
