// Block-scaled weight encodings of released MoE checkpoints, decoded at load:
//   MXFP4 (gpt-oss experts, OCP Microscaling): `*_blocks` u8 [..., groups, 16]: 32 E2M1 values per group, two per
//     byte, the low nibble first; `*_scales` u8 [..., groups]: E8M0, the group's scale 2^(s - 127).
//   FP8 with block scales (DeepSeek-V3/V3.1): `weight` F8_E4M3 [rows, cols] and `weight_scale_inv` F32
//     [ceil(rows / b), ceil(cols / b)] (b = 128): value = fp8 x scale_inv[r / b][c / b].
// Decoding is exact in f32 (MXFP4: an E2M1 value times a power of two; FP8: one f32 product per weight).
#pragma once

#include <cstdint>

namespace hpcinfer::formats {

// The 16 E2M1 values: 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives (code 8 is -0).
float e2m1_to_f32(uint8_t code);
// 2^(s - 127); s = 255 is NaN (OCP MX v1.0).
float e8m0_to_f32(uint8_t s);
// n values (a multiple of 32) of one MXFP4 row: blocks [n / 32][16], scales [n / 32].
void dequantize_mxfp4_row(const uint8_t* blocks, const uint8_t* scales, int64_t n, float* out);
// Row r of an FP8 [rows, cols] matrix with block scales scale_inv [ceil(rows / b)][scale_cols].
void dequantize_fp8_row(const uint8_t* row, int64_t r, int64_t cols, const float* scale_inv, int64_t scale_cols,
                        int64_t block, float* out);

}  // namespace hpcinfer::formats
