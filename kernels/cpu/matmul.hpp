// Dense matmul kernels: y[n, rows] = x[n, cols] * W[rows, cols]^T for f32 activations and f32 or bf16 weights.
//
// Each call computes the output columns (weight rows) [row_begin, row_end) for all n activation rows; callers
// split rows across threads. Every output element is produced by the same arithmetic sequence whatever n and the
// row range are (fixed 16-lane accumulation, fixed reduction order), so results do not depend on batch composition:
// a token gives bit-identical outputs alone or batched. Dispatch on CPU features at run time (GCC target_clones).
#pragma once

#include <cstdint>

namespace hpcinfer::kernels {

// x: [n, cols] row stride cols; w: [rows, cols] row stride cols; y: [n, ldy].
void matmul_f32(const float* x, int64_t n, const float* w, int64_t cols, float* y, int64_t ldy, int64_t row_begin,
                int64_t row_end);
// w holds bf16 bit patterns; accumulation in f32.
void matmul_bf16(const float* x, int64_t n, const uint16_t* w, int64_t cols, float* y, int64_t ldy,
                 int64_t row_begin, int64_t row_end);

}  // namespace hpcinfer::kernels
