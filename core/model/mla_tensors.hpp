// DeepSeek's MLA tensors as checkpoints store them, cut into the canonical ones the "mla" block kind declares:
//   self_attn.kv_a_proj_with_mqa [kv_lora + rope, dim] -> wkv_a = rows [0, kv_lora), wk_pe = rows [kv_lora, +rope)
//   self_attn.kv_b_proj [heads * (nope + v), kv_lora]   -> w_uk_t [heads * kv_lora, nope]: head h's key rows,
//                                                          transposed (folded into the query);
//                                                          w_uv [heads * v, kv_lora]: head h's value rows
// Element copies in the file's dtype (exact).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hpcinfer/model.hpp"
#include "hpcinfer/tensor.hpp"

namespace hpcinfer {

// "wkv_a", "wk_pe", "w_uk_t", "w_uv" for a canonical layers.{i}.<that>, else "".
std::string mla_part(const std::string& canonical);
// The checkpoint tensor (its name within the layer, after "self_attn.") a part is cut from.
const char* mla_source(const std::string& part);
// The part's bytes out of the whole source tensor `src`.
void cut_mla(const TensorView& src, const std::string& part, const AttentionSpec& a, std::vector<uint8_t>& out);

}  // namespace hpcinfer
