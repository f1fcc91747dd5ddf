// A model description as its tensors: what loaders read, what strategies split, what the planner counts.
// Built from the block kinds of every layer (core/model/blocks), plus the model-level tok_embeddings, norm and
// output head, and the model-level anchors "embed.out" (a vocab-split embedding's partial rows, summed) and
// "head.logits" (a vocab-split head's columns, gathered).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "hpcinfer/model.hpp"
#include "hpcinfer/strategy.hpp"

namespace hpcinfer {

// Every tensor and anchor of the model, in forward order. With tied embeddings "output" is listed too (the head
// reads tok_embeddings under that name).
ModelLayout model_layout(const ModelDesc& d);
// The tensors a checkpoint of this description stores (no "output" when tied), in file order.
std::vector<LogicalTensor> stored_tensors(const ModelDesc& d);
// Logical [rows, cols] of a canonical tensor. Throws std::invalid_argument for a name the model does not have.
std::pair<int64_t, int64_t> tensor_shape(const ModelDesc& d, const std::string& canonical);
// Checks a description read from `file`: positive sizes, known block kinds, their specs, RoPE. Throws
// std::runtime_error "<file>: <key>: <why>".
void validate_desc(const ModelDesc& d, const std::string& file);

// n identical layers (most dense checkpoints).
std::vector<LayerSpec> uniform_layers(int n, const LayerSpec& layer);

}  // namespace hpcinfer
