// Hugging Face model directories: config.json + model.safetensors, or sharded *.safetensors with
// model.safetensors.index.json ("weight_map": {tensor: file}). Weights are memory-mapped; HF q/k rows are already in
// the rotate-half RoPE layout, so nothing is permuted.
//
// config.json (core/model/hf_config.cpp) keys read: architectures (LlamaForCausalLM, MistralForCausalLM -> "llama";
// Qwen2ForCausalLM -> "qwen2", with q/k/v biases; Qwen3ForCausalLM -> "qwen3", with per-head q/k norms and
// attention_bias), hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads
// (default: heads), head_dim (default: hidden / heads), vocab_size, rms_norm_eps, tie_word_embeddings,
// max_position_embeddings, bos_token_id, eos_token_id (int or list: the first), sliding_window (Llama/Mistral),
// RoPE in either form: transformers 5's rope_parameters {rope_theta, rope_type: default | linear | llama3 | yarn,
// factor, ...} (or one such object per layer_types entry), or transformers 4's rope_theta + rope_scaling; also
// partial_rotary_factor and rope_interleave. Unknown RoPE keys and types are errors naming the key. And hpcinfer's
// own "hpcinfer_tokenizer" (a tokenizer path, relative to the directory or absolute) and "palu" (a `hpcinfer palu
// compress` output: every layer's attention is the palu kind, core/palu/palu_config.hpp).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/model/model_source.hpp"

namespace hpcinfer {

// config.json -> description. Errors name `file` and the key.
std::string hf_architectures_supported();
ModelDesc parse_hf_config(const nlohmann::json& config, const std::string& file);
// Description -> config.json (the keys above in transformers 4's form, plus model_type and torch_dtype).
nlohmann::json hf_config_json(const ModelDesc& d, const std::string& torch_dtype = "bfloat16");
// Canonical name -> Hugging Face name in a family's checkpoints (ModelDesc::arch), e.g. layers.3.wq ->
// model.layers.3.self_attn.q_proj.weight, layers.3.experts.5.w_gate -> model.layers.3.mlp.experts.5.gate_proj.weight
// (mixtral: model.layers.3.block_sparse_moe.experts.5.w1.weight).
std::string hf_tensor_name(const std::string& canonical, const std::string& family = "llama");

std::unique_ptr<ModelSource> open_hf_model(const std::string& dir);

}  // namespace hpcinfer
