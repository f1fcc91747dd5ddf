// The block kinds the core knows, each defined in its own file of this folder.
#pragma once

#include "core/model/blocks/block.hpp"

namespace hpcinfer {

const BlockKind& gqa_attention_kind();  // attention_gqa.cpp
const BlockKind& mla_attention_kind();  // attention_mla.cpp
const BlockKind& palu_attention_kind(); // attention_palu.cpp
const BlockKind& swiglu_ffn_kind();     // ffn_swiglu.cpp
const BlockKind& moe_ffn_kind();        // ffn_moe.cpp

}  // namespace hpcinfer
