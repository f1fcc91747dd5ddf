// int8 matmul internals shared by the instruction-set variants (kernels/cpu/matmul_int8*.cpp); the public API is
// matmul_int8 in kernels/cpu/matmul.hpp.
//
// W8A8 with dynamic activation quantization: every call quantizes its activation rows in blocks of 32
// (symmetric, scale = max|x| / 127 in f32), then for each 32-block computes the exact integer dot product of the
// int8 weights and activations, and accumulates block_dot * w_scale * x_scale in f32.
// Weights are stored offset by +128 (u8 = q + 128) so that VNNI's unsigned x signed dot product (vpdpbusd) applies
// directly: sum(u8 * xq) = sum(q * xq) + 128 * sum(xq), and the correction -128 * sum(xq) is computed once per
// activation block and seeds the integer accumulator.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/matmul.hpp"

namespace hpcinfer::kernels::int8_detail {

inline constexpr int64_t kActBlock = 32;

// Activation rows quantized for one call: [n][cols_pad] int8 (zero-padded), per 32-block scale and correction.
struct QuantizedActs {
  int64_t n = 0, cols = 0, blocks = 0;  // blocks = ceil(cols / 32); cols_pad = blocks * 32
  std::vector<int8_t> q;                // [n][blocks * 32]
  std::vector<float> scale;             // [n][blocks]
  std::vector<int32_t> correction;      // [n][blocks]: -128 * sum of the block's q
};
void quantize_acts(const float* x, int64_t n, int64_t cols, QuantizedActs& out);
void quantize_acts_vnni(const float* x, int64_t n, int64_t cols, QuantizedActs& out);  // same bytes, AVX-512
void quantize_acts_avx2(const float* x, int64_t n, int64_t cols, QuantizedActs& out);  // same bytes, AVX2

// Weight rows quantized into a panel at load (quantize_rows_to_int8_panel in kernels/cpu/matmul.hpp), per ISA.
void quantize_rows_to_panel_avx512(const float* x, int64_t ld, int64_t n, int64_t cols, int64_t group, uint8_t* panel);
void quantize_rows_to_panel_avx2(const float* x, int64_t ld, int64_t n, int64_t cols, int64_t group, uint8_t* panel);

// The kernels read the panel layout (kernels/cpu/matmul.hpp) and give bitwise the same results.
void matmul_int8_generic(const QuantizedActs& a, const Int8Weights& w, int64_t cols, float* y, int64_t ldy,
                         int64_t r0, int64_t r1);
void matmul_int8_vnni(const QuantizedActs& a, const Int8Weights& w, int64_t cols, float* y, int64_t ldy,
                      int64_t r0, int64_t r1);
void matmul_int8_avx2(const QuantizedActs& a, const Int8Weights& w, int64_t cols, float* y, int64_t ldy,
                      int64_t r0, int64_t r1);

// Byte offset of 32-block b inside a row-layout row, and of its scale (-1: per-channel, the scale is
// channel_scales[row]). In a panel every offset is kPanelRows times these (each item is widened 16 times).
inline int64_t block_offset(int64_t b, int64_t group) {
  if (group == 0) return b * kActBlock;
  const int64_t per_group = group / kActBlock;
  return (b / per_group) * (4 + group) + 4 + (b % per_group) * kActBlock;
}
inline int64_t scale_offset(int64_t b, int64_t group) {
  return group == 0 ? -1 : (b / (group / kActBlock)) * (4 + group);
}
// Inside a panel's block: the byte of row j, input kk (0..31): slice kk / 4, row j's 4 bytes, byte kk % 4.
inline int64_t panel_byte(int64_t j, int64_t kk) { return (kk / 4) * 64 + j * 4 + kk % 4; }

// Walks a panel in order (no division per block): next() returns the next block's 512 weight bytes; at the start of
// each group (group > 0) it first steps over the group's 16 scales and points `scales` at them.
struct PanelWalk {
  const uint8_t* at;
  int64_t per_group;  // blocks per group; 0 = per-channel scales (none in the panel)
  const float* scales = nullptr;
  int64_t left = 0;
  PanelWalk(const uint8_t* panel, int64_t group) : at(panel), per_group(group / kActBlock) {}
  const uint8_t* next() {
    if (per_group > 0 && left-- == 0) {
      scales = reinterpret_cast<const float*>(at);
      at += 16 * 4;
      left = per_group - 1;
    }
    const uint8_t* block = at;
    at += 16 * kActBlock;
    return block;
  }
};

}  // namespace hpcinfer::kernels::int8_detail
