// Hugging Face model directories: config.json + model.safetensors, or sharded *.safetensors with
// model.safetensors.index.json ("weight_map": {tensor: file}). Weights are memory-mapped; HF q/k rows are already in
// the rotate-half RoPE layout, so nothing is permuted.
//
// config.json keys read: architectures (LlamaForCausalLM, MistralForCausalLM -> "llama"; Qwen2ForCausalLM -> "qwen2",
// with q/k/v biases), hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads
// (default: heads), head_dim (default: hidden / heads), vocab_size, rms_norm_eps, rope_theta, rope_scaling
// (rope_type "llama3" only), tie_word_embeddings, max_position_embeddings, bos_token_id, eos_token_id (int or list:
// the first), and hpcinfer's own "hpcinfer_tokenizer" (a tokenizer path, relative to the directory or absolute).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/model/model_source.hpp"

namespace hpcinfer {

// config.json -> description. Errors name `file` and the key.
ModelDesc parse_hf_config(const nlohmann::json& config, const std::string& file);
// Description -> config.json (the keys above, plus model_type and torch_dtype).
nlohmann::json hf_config_json(const ModelDesc& d, const std::string& torch_dtype = "bfloat16");
// Canonical name -> Hugging Face name, e.g. layers.3.wq -> model.layers.3.self_attn.q_proj.weight.
std::string hf_tensor_name(const std::string& canonical);

std::unique_ptr<ModelSource> open_hf_model(const std::string& dir);

}  // namespace hpcinfer
