// Streaming safetensors writer: tensors are produced a few rows at a time by a callback (as f32) and converted to
// their file dtype on the way to disk, so a model of any size is written with a few MiB of memory.
// Over `max_shard_bytes` the tensors are split across model-0000i-of-0000N.safetensors files with a
// model.safetensors.index.json ({"metadata": {"total_size"}, "weight_map": {tensor: file}}), as Hugging Face does.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "hpcinfer/tensor.hpp"

namespace hpcinfer {

struct TensorSpec {
  std::string name;             // name in the file, e.g. model.layers.0.self_attn.q_proj.weight
  DType dtype = DType::bf16;    // f32, f16 or bf16
  std::vector<int64_t> shape;   // outermost first; the last dim is the row length
  int64_t rows() const;
  int64_t cols() const { return shape.empty() ? 1 : shape.back(); }
  uint64_t bytes() const;
};

// Fills out[(row_end - row_begin) * spec.cols()] with rows [row_begin, row_end) of the tensor, in f32.
using RowFiller = std::function<void(const TensorSpec& spec, int64_t row_begin, int64_t row_end, float* out)>;

// One safetensors file with exactly `specs`, in that order. Throws std::runtime_error naming the file on I/O errors.
void write_safetensors_file(const std::string& path, const std::vector<TensorSpec>& specs, const RowFiller& fill,
                            const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// A whole model in `dir`: model.safetensors, or shards + index when the total exceeds max_shard_bytes.
// Returns the file names written (relative to dir).
std::vector<std::string> write_safetensors_model(const std::string& dir, const std::vector<TensorSpec>& specs,
                                                 const RowFiller& fill, uint64_t max_shard_bytes = 4ull << 30);

}  // namespace hpcinfer
