// GGUF models (llama.cpp): architecture "llama" (Llama 1/2/3, Mistral, TinyLlama, ... as llama.cpp converts them) or
// "qwen2". Metadata -> ModelDesc; tensors are views into the mapping in their stored dtype (F32/F16/BF16/Q8_0/Q4_0/
// Q4_1: the weight formats dequantize). For "llama", llama.cpp stores attn_q/attn_k rows in the interleaved RoPE
// layout; they are permuted back to rotate-half on first access (qwen2 uses NeoX RoPE: stored rotate-half already).
//
// desc.max_seq_len is llama.context_length as the file says it (converters may write a default, e.g. 128 for
// llama2.c conversions whose model was trained at 512). The tokenizer is the GGUF file itself when it carries
// tokenizer.ggml.tokens.
#pragma once

#include <memory>
#include <string>

#include "core/model/model_source.hpp"

namespace hpcinfer {

std::unique_ptr<ModelSource> open_gguf_model(const std::string& path);

// GGUF tensor name of a canonical one: tok_embeddings -> token_embd.weight, layers.3.wq -> blk.3.attn_q.weight, ...
std::string gguf_tensor_name(const std::string& canonical);

}  // namespace hpcinfer
