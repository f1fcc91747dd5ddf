// Shared machinery of the loaders (hf_source, gguf_source, llama2c_source): the tensor table with shape checks
// against the description (core/model/model_layout.hpp), and the lazy RoPE row permutation (interleaved ->
// rotate-half) with its owned cache.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/model/model_source.hpp"

namespace hpcinfer {

// Interleaved RoPE rows (pairs (2j, 2j+1) rotate together, llama.cpp / llama2.c) -> rotate-half (Hugging Face):
// within each head of `head_dim` rows, out row j = in row 2j and out row head_dim/2 + j = in row 2j+1 (j < head_dim/2).
// Whole rows move, so any row-major dtype (also block-quantized) works. out gets rows * row_bytes bytes.
void permute_interleaved_to_half(const TensorView& in, int n_heads, int64_t head_dim, std::vector<uint8_t>& out);

// A loader's tensor table: canonical name -> view in the mapping, or a derived tensor made on first access (the
// RoPE row permutation, an expert cut out of a fused tensor) into an owned, cached copy.
class BaseSource : public ModelSource {
 public:
  const ModelDesc& desc() const override { return desc_; }
  std::string path() const override { return path_; }
  bool has_tensor(const std::string& canonical) const override { return entries_.count(canonical) != 0; }
  TensorView tensor(const std::string& canonical) const override;
  void release(const std::string& canonical) const override;
  double prefetch(const std::string& canonical, int64_t row_begin, int64_t row_end) const override;
  std::vector<std::string> tensor_names() const override;

 protected:
  struct Entry {
    TensorView view;        // view.name: the canonical name
    std::string file;       // the file that holds it (shards differ)
    std::string file_name;  // its name in that file
    // Non-null: the tensor's bytes (rows x dtype_row_bytes(cols)) are made by this on first access.
    std::function<void(std::vector<uint8_t>&)> derive;
    // The file bytes it is read from, when they are one view of a mapping (itself, or the rows a permutation reads):
    // read ahead by prefetch(), unmapped by release(). data null for other derived tensors.
    TensorView file_view;
  };
  // Registers a tensor after checking its shape against desc_ (error: "<file>: tensor <canonical> (<name>): ...").
  // permute_heads > 0: the file holds Q/K rows in the interleaved RoPE layout of that many heads (permuted on first
  // access).
  void add(const std::string& canonical, const TensorView& v, const std::string& file, const std::string& file_name,
           int permute_heads = 0);
  // A tensor of `dtype` and the canonical shape whose bytes `derive` makes (from views it holds) on first access.
  void add_derived(const std::string& canonical, DType dtype, const std::string& file, const std::string& file_name,
                   std::function<void(std::vector<uint8_t>&)> derive);
  // Throws "<file>: tensor <canonical> (<file_name(canonical)>): missing" for the first one not registered.
  void require_all(const std::string& file, const std::function<std::string(const std::string&)>& file_name) const;

  ModelDesc desc_;
  std::string path_;
  std::map<std::string, Entry> entries_;

 private:
  mutable std::map<std::string, std::vector<uint8_t>> derived_;  // canonical -> owned bytes of a derived tensor
};

}  // namespace hpcinfer
