// An opened model file or directory: its architecture and a logical view of every tensor by canonical name
// (see interfaces/hpcinfer/model.hpp for names and shapes). Memory-mapped: only tensors that are asked for are read.
//
// Loaders hide file-format differences here, so the runtime never sees them:
// - Q/K rows always come out in the rotate-half (Hugging Face) RoPE layout. Formats that store the interleaved layout
//   (GGUF from llama.cpp, llama2.c checkpoints) are permuted on first access to that tensor (an owned copy, cached).
// - Names are mapped to canonical ones; shapes are checked against the description (error names file + tensor).
// Threading: tensor() may be called from one thread at a time.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "hpcinfer/model.hpp"
#include "hpcinfer/tensor.hpp"

namespace hpcinfer {

class ModelSource {
 public:
  virtual ~ModelSource() = default;
  virtual const ModelDesc& desc() const = 0;
  virtual std::string path() const = 0;
  virtual std::string format() const = 0;  // "hf", "gguf" or "llama2c"
  virtual bool has_tensor(const std::string& canonical) const = 0;
  // Throws std::runtime_error "<file>: tensor <canonical> (<file's name>): ..." when missing or malformed.
  virtual TensorView tensor(const std::string& canonical) const = 0;
  // The stage is done with this tensor: a loader may drop an owned copy it derived (decoded experts, permuted rows)
  // and unmap the file pages of a view (they stay in the page cache), so packed weights are not held twice.
  virtual void release(const std::string& /*canonical*/) const {}
  // Brings rows [row_begin, row_end) of the tensor's file bytes into memory before packing; returns the seconds
  // spent (0 for tensors that are not views of a file: derived ones).
  virtual double prefetch(const std::string& /*canonical*/, int64_t /*row_begin*/, int64_t /*row_end*/) const {
    return 0.0;
  }
  // Canonical names of every tensor present.
  virtual std::vector<std::string> tensor_names() const = 0;
  // Where the tokenizer is: the model file itself (GGUF), a file beside it (tokenizer.json, tokenizer.model,
  // tokenizer.bin, tok<vocab>.bin), or empty when none is found.
  virtual std::string tokenizer_path() const = 0;
};

// format: "auto" (by extension / directory contents), "hf", "gguf", "llama2c".
std::unique_ptr<ModelSource> open_model(const std::string& path, const std::string& format = "auto");

}  // namespace hpcinfer
