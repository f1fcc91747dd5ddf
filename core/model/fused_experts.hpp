// Experts stored fused, one tensor per layer for all experts (gpt-oss's released layout, kept by transformers 5):
//   mlp.experts.gate_up_proj       [E, dim, 2 ff]  gate and up interleaved along the last axis (x @ W convention)
//   mlp.experts.gate_up_proj_bias  [E, 2 ff]
//   mlp.experts.down_proj          [E, ff, dim]
//   mlp.experts.down_proj_bias     [E, dim]
// Each canonical per-expert tensor (layers.{i}.experts.{e}.w_gate [ff, dim], w_up, w_down [dim, ff], b_gate [1, ff],
// b_up, b_down [1, dim]) is cut out of them element by element (exact: the dtype is kept).
// The released checkpoints store the two weights in MXFP4 instead (core/formats/microscaling.hpp), in the nn.Linear
// orientation: gate_up_proj_blocks [E, 2 ff, dim / 32, 16] + _scales [E, 2 ff, dim / 32], down_proj_blocks
// [E, dim, ff / 32, 16] + _scales: row j of w_gate is row 2j of expert e (w_up: 2j + 1), row a of w_down is row a;
// decoded exactly to f32.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hpcinfer/tensor.hpp"

namespace hpcinfer {

struct FusedExpertPart {
  std::string fused_name;  // the file's tensor, e.g. model.layers.3.mlp.experts.gate_up_proj
  int expert = 0;
  std::string part;        // w_gate | w_up | w_down | b_gate | b_up | b_down
};

// Whether `canonical` is a per-expert tensor of a fused layout, and where it lives.
bool fused_expert_part(const std::string& canonical, FusedExpertPart& out);
// The fused tensor's logical 3-D shape for a part: [E, dim, 2 ff], [E, 2 ff] (as [E, 1, 2 ff]), [E, ff, dim], [E, dim].
std::vector<int64_t> fused_shape(const std::string& part, int64_t experts, int64_t dim, int64_t ff);
// Cuts the part out of `fused` (a view of the whole fused tensor, rows = E x middle dim): out gets
// rows x dtype_row_bytes(cols) bytes of the canonical [rows, cols] tensor.
void cut_fused_expert(const TensorView& fused, const FusedExpertPart& p, int64_t dim, int64_t ff,
                      std::vector<uint8_t>& out);
// The MXFP4 form of w_gate / w_up / w_down: shapes [E, rows, groups, 16] and [E, rows, groups] for blocks and scales
// (the caller checks them); out gets the canonical tensor as f32.
void cut_fused_expert_mxfp4(const TensorView& blocks, const TensorView& scales, const FusedExpertPart& p, int64_t dim,
                            int64_t ff, std::vector<uint8_t>& out);
// Expected [E, rows, groups] of the MXFP4 scales of a part (blocks: the same with 16 appended).
std::vector<int64_t> mxfp4_scales_shape(const std::string& part, int64_t experts, int64_t dim, int64_t ff);

}  // namespace hpcinfer
