// Dense matmul kernels: y[n, rows] = x[n, cols] * W[rows, cols]^T for f32 activations and f32, bf16 or int8 weights.
// (int8: see below; its activations are quantized per call, and "the same arithmetic whatever n" holds for it too.)
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

// Symmetric int8 weights: W[r, c] = q[r, c] * scale, the scale an f16 value (as in GGUF Q8_0) held as f32; q is
// stored as u8 = q + 128 (see kernels/cpu/matmul_int8.hpp for why). Rows are padded with q = 0.
//   group > 0 (a power of two >= 32): one scale per `group` consecutive inputs. A row is ceil(cols / group) blocks
//     {f32 scale, group x u8}: each row is one contiguous stream, scales travelling with their weights as in Q8_0
//     (separate scale arrays doubled the streams and the hardware prefetcher lost track at 2 threads).
//   group == 0: one scale per output channel, in channel_scales[row]; a row is ceil(cols / 32) * 32 u8.
// matmul_int8 quantizes the activations per call (W8A8, blocks of 32) and sums exact integer block dot products in
// f32: AVX-512 VNNI where the CPU has it, else portable code.
struct Int8Weights {
  const uint8_t* rows;          // [rows][int8_row_bytes(cols, group)]
  const float* channel_scales;  // [rows] when group == 0, else unused
  int64_t group;
};
int64_t int8_row_bytes(int64_t cols, int64_t group);
void matmul_int8(const float* x, int64_t n, const Int8Weights& w, int64_t cols, float* y, int64_t ldy,
                 int64_t row_begin, int64_t row_end);
// Quantizes one row of cols values into the layout above (round to nearest, scale = max|x| / 127 rounded to an f16
// value); group == 0 also writes the row's scale to *channel_scale.
void quantize_row_int8(const float* x, int64_t cols, int64_t group, uint8_t* row, float* channel_scale);
// out[cols] = the f32 values of one packed row.
void dequantize_row_int8(const uint8_t* row, int64_t cols, int64_t group, float channel_scale, float* out);

}  // namespace hpcinfer::kernels
