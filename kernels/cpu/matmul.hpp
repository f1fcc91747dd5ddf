// Dense matmul kernels: y[n, rows] = x[n, cols] * W[rows, cols]^T for f32 activations and f32, bf16 or int8 weights.
// (int8: see below; its activations are quantized per call, and "the same arithmetic whatever n" holds for it too.)
//
// Each call computes the output columns (weight rows) [row_begin, row_end) for all n activation rows; callers
// split rows across threads. Every output element is produced by the same arithmetic sequence whatever n and the
// row range are (f32: one f32 vector accumulator per output, k ascending, fixed reduction order; bf16 and int8: see
// below), so results do not depend on batch composition: a token gives bit-identical outputs alone or batched.
// Only the tile shape (how many weight rows / activation rows share loads) changes with n, never the arithmetic.
// Dispatch on CPU features at first use: one copy per ISA (x86-64-v4 = AVX-512, v3 = AVX2+FMA, baseline), see
// matmul_tiles.hpp and matmul_bf16_panels.hpp; HPCINFER_SIMD=avx2|generic forces a narrower one.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hpcinfer::kernels {

// Weight panels (bf16 and int8): the kernels that stream weights read W[rows, cols] as panels of kPanelRows
// consecutive rows, interleaved so that a panel is one sequential stream and one vector holds the 16 rows' values
// at the same input position. Why: a decode step reads every weight once, and per-row streams (one short stream per
// row, 8-16 of them in flight per thread) kept the hardware prefetcher from reaching the machine's read bandwidth
// (bf16: 30.5 GB/s per-row vs 36.1 panels, int8 26.3 vs 35.3, on 2 threads where a plain read reaches 36-37;
// bench/RESULTS.md). A lane of the output vector is an output row, so no horizontal sums either.
// Rows past the end of the last panel are zero. Calls cover output rows [row_begin, row_end): row_begin is a
// multiple of kPanelRows; row_end a multiple of it or the matrix's last row.
inline constexpr int64_t kPanelRows = 16;
inline int64_t panel_count(int64_t rows) { return (rows + kPanelRows - 1) / kPanelRows; }

// x: [n, cols] row stride cols; w: [rows, cols] row stride cols (row layout, f32 only); y: [n, ldy].
void matmul_f32(const float* x, int64_t n, const float* w, int64_t cols, float* y, int64_t ldy, int64_t row_begin,
                int64_t row_end);

// bf16 panels: panel p = rows [16p, 16p + 16) as [cols][16] bf16 bit patterns, element (r, c) at
// bf16_panel_index(r, c, cols). Each output is two f32 partial sums (even and odd inputs, ascending) added at the
// end: the same arithmetic for every n and tile, so a token's outputs do not depend on its batch.
inline size_t bf16_panel_index(int64_t r, int64_t c, int64_t cols) {
  return size_t((r / kPanelRows) * cols + c) * kPanelRows + size_t(r % kPanelRows);
}
void matmul_bf16(const float* x, int64_t n, const uint16_t* panels, int64_t cols, float* y, int64_t ldy,
                 int64_t row_begin, int64_t row_end);

// bf16 x bf16 ("bf16dot"): activations rounded to bf16 per call, products summed by AVX512-BF16 `vdpbf16ps`, twice
// the f32 FMA rate. Pair panels: panel p = rows [16p, 16p + 16) as [ceil(cols / 2)][16][2]: each row's inputs in
// pairs, element (r, c) at bf16_pair_panel_index(r, c, cols); the odd column and rows past the end are zero.
// Only where bf16dot_supported(); the arithmetic (bf16 activations, two accumulators per output over input pairs,
// even and odd pairs added at the end) does not depend on n.
inline size_t bf16_pair_panel_index(int64_t r, int64_t c, int64_t cols) {
  const int64_t pairs = (cols + 1) / 2;
  return (size_t((r / kPanelRows) * pairs + c / 2) * kPanelRows + size_t(r % kPanelRows)) * 2 + size_t(c % 2);
}
bool bf16dot_supported();
void matmul_bf16dot(const float* x, int64_t n, const uint16_t* panels, int64_t cols, float* y, int64_t ldy,
                    int64_t row_begin, int64_t row_end);

// Symmetric int8 weights: W[r, c] = q[r, c] * scale, the scale an f16 value (as in GGUF Q8_0) held as f32; q is
// stored as u8 = q + 128 (see kernels/cpu/matmul_int8.hpp for why).
//   group > 0 (a power of two >= 32): one scale per `group` consecutive inputs (rows whose length is not a
//     multiple of the group end with a short, zero-padded group).
//   group == 0: one scale per output channel, in channel_scales[row].
// Row layout (the quantizer's output, int8_row_bytes per row): ceil(cols / group) blocks {f32 scale, group x u8}
// (group 0: ceil(cols / 32) * 32 u8, no scales).
// Panel layout (what matmul_int8 reads, int8_panel_bytes per panel of 16 rows): the row layout with every item
// widened 16 times: per group, the 16 rows' f32 scales (64 bytes), then per 32-input block 8 slices of 64 bytes,
// slice s = the 16 rows' inputs [4s, 4s + 4) of the block, row-major (row j at bytes 4j .. 4j + 3). One 64-byte
// slice is one VNNI operand: 16 rows x 4 inputs against 4 activation bytes broadcast.
// matmul_int8 quantizes the activations per call (W8A8, blocks of 32) and sums exact integer block dot products in
// f32 (acc = fma(float(block dot), w_scale * x_scale, acc), blocks ascending): AVX-512 VNNI where the CPU has it,
// else portable code with bitwise the same results.
struct Int8Weights {
  const uint8_t* panels;        // [panel_count(rows)][int8_panel_bytes(cols, group)]
  const float* channel_scales;  // [panel_count(rows) * 16] when group == 0, else unused
  int64_t group;
};
int64_t int8_row_bytes(int64_t cols, int64_t group);
inline int64_t int8_panel_bytes(int64_t cols, int64_t group) { return kPanelRows * int8_row_bytes(cols, group); }
void matmul_int8(const float* x, int64_t n, const Int8Weights& w, int64_t cols, float* y, int64_t ldy,
                 int64_t row_begin, int64_t row_end);
// Quantizes one row of cols values into the row layout (round to nearest, scale = max|x| / 127 rounded to an f16
// value); group == 0 also writes the row's scale to *channel_scale.
void quantize_row_int8(const float* x, int64_t cols, int64_t group, uint8_t* row, float* channel_scale);
// Copies one row-layout row into row j (0..15) of a panel (a fresh panel is all bytes 128 and scales 0).
void int8_row_to_panel(const uint8_t* row, int64_t cols, int64_t group, int64_t j, uint8_t* panel);
void init_int8_panel(int64_t cols, int64_t group, uint8_t* panel);
// Rows [0, n) (n <= kPanelRows) of x (f32, row stride ld) quantized into a panel that init_int8_panel prepared
// (group > 0; per-channel scales go row by row through quantize_row_int8):
// bitwise the bytes quantize_row_int8 + int8_row_to_panel give row by row, with vectors where the CPU has AVX-512 or
// AVX2 and group is a multiple of 32 (quantizing at load spent most of its user time in the row-by-row path).
void quantize_rows_to_int8_panel(const float* x, int64_t ld, int64_t n, int64_t cols, int64_t group, uint8_t* panel);
// out[cols] = the f32 values of row j of a panel.
void dequantize_int8_panel_row(const uint8_t* panel, int64_t j, int64_t cols, int64_t group, float channel_scale,
                               float* out);


// 4-bit weights (W4A8), one f16 scale d per 32 consecutive inputs, q in 0..15:
//   symmetric (GGUF Q4_0's values): W[r, c] = (q - 8) * d;
//   with a minimum (GGUF Q4_1's values, has_min): W[r, c] = q * d + m, m an f16 value per block.
// Rows whose length is not a multiple of 32 end with a short, zero-padded block (q = 8, resp. d = m = 0).
// Row layout (the quantizer's output and GGUF's, int4_row_bytes per row): per 32-block {f16 d, [f16 m,] 16 bytes},
// byte i = q[i] | q[i + 16] << 4.
// Panel layout (what matmul_int4 reads, int4_panel_bytes per panel of 16 rows), per 32-block: the 16 rows' f16 d
// (32 bytes), [the 16 rows' f16 m (32 bytes),] then 4 chunks of 64 bytes: chunk t, byte 4j + b (row j, b = 0..3) =
// the row layout's byte 4t + b of row j, i.e. low nibble q[j, 4t + b], high nibble q[j, 16 + 4t + b]. A chunk's low
// nibbles are one VNNI operand (16 rows x 4 inputs) and its high nibbles another; on AVX2 each 32-byte half is 8
// rows. 4.5 bits per weight (5 with minimums), as Q4_0 (Q4_1).
// matmul_int4 quantizes the activations per call as matmul_int8 does (blocks of 32, int8) and sums exact integer
// block dots in f32, blocks ascending, the same steps on every path (AVX-512 VNNI, AVX2, portable: bitwise equal)
// and for every n: symmetric acc = fma(float(dot(q - 8, xq)), d * x_scale, acc); with minimums
// acc = fma(float(dot(q, xq)), d * x_scale, acc), then acc = fma(float(sum(xq)), m * x_scale, acc).
struct Int4Weights {
  const uint8_t* panels;  // [panel_count(rows)][int4_panel_bytes(cols, has_min)]
  bool has_min = false;
};
inline int64_t int4_blocks(int64_t cols) { return (cols + 31) / 32; }
constexpr int64_t int4_block_bytes(bool has_min) { return has_min ? 2 + 2 + 16 : 2 + 16; }
inline int64_t int4_row_bytes(int64_t cols, bool has_min = false) { return int4_blocks(cols) * int4_block_bytes(has_min); }
constexpr int64_t int4_panel_block_bytes(bool has_min) { return (has_min ? 4 : 2) * kPanelRows + 4 * 64; }
inline int64_t int4_panel_bytes(int64_t cols, bool has_min = false) {
  return int4_blocks(cols) * int4_panel_block_bytes(has_min);
}
void matmul_int4(const float* x, int64_t n, const Int4Weights& w, int64_t cols, float* y, int64_t ldy,
                 int64_t row_begin, int64_t row_end);
// Quantizes one row into the symmetric row layout: per block, the value of largest magnitude maps to q - 8 = -8 (the
// scale d = that value / -8, rounded to an f16 value; GGUF Q4_0's rule), others to round(x / d) clamped to [-8, 7].
void quantize_row_int4(const float* x, int64_t cols, uint8_t* row);
// Copies one row-layout row into row j (0..15) of a panel (a fresh panel from init_int4_panel holds zeros).
void int4_row_to_panel(const uint8_t* row, int64_t cols, bool has_min, int64_t j, uint8_t* panel);
void init_int4_panel(int64_t cols, bool has_min, uint8_t* panel);
// out[cols] = the f32 values of row j of a panel.
void dequantize_int4_panel_row(const uint8_t* panel, int64_t j, int64_t cols, bool has_min, float* out);

}  // namespace hpcinfer::kernels
