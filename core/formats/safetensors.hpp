// Safetensors reader (Hugging Face's weight file format). Memory-mapped; tensor data is not read until used.
//
// Layout: u64 LE header length N, then N bytes of JSON {name: {"dtype": "BF16"|"F16"|"F32"|..., "shape": [...],
// "data_offsets": [begin, end]}, "__metadata__": {...}}, then the data section; offsets are relative to its start.
// Validation at open (every error names the file and the tensor): header length past the end, header not JSON,
// offsets past the end or reversed, offsets inconsistent with shape x dtype size (for the dtypes we know).
// Tensors of dtypes we cannot use (I8, F64, ...) are listed with `supported = false`; asking for their view throws.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/formats/mapped_file.hpp"
#include "hpcinfer/tensor.hpp"

namespace hpcinfer {

struct SafetensorsTensorInfo {
  std::string name;
  std::string dtype_name;       // as in the file, e.g. "BF16"
  bool supported = false;       // BF16, F16 or F32
  DType dtype = DType::f32;     // valid when supported
  std::vector<int64_t> shape;   // outermost first (row-major), e.g. [out, in]
  uint64_t begin = 0, end = 0;  // byte range within the data section
  // As a logical row-major matrix: cols = last dim (1 for a scalar), rows = product of the others.
  int64_t rows() const;
  int64_t cols() const { return shape.empty() ? 1 : shape.back(); }
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);  // parses and validates; throws std::runtime_error

  const std::string& path() const { return file_->path(); }
  const std::vector<SafetensorsTensorInfo>& tensors() const { return tensors_; }
  const SafetensorsTensorInfo* find(const std::string& name) const;
  // View of the tensor's bytes inside the mapping. Throws (naming file and tensor) for unsupported dtypes.
  TensorView view(const SafetensorsTensorInfo& t) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::shared_ptr<MappedFile> file_;
  std::vector<SafetensorsTensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
  const uint8_t* data_ = nullptr;
};

// "BF16" -> bf16 etc.; false for dtypes hpcinfer does not load.
bool safetensors_dtype(const std::string& name, DType& out);
// Element size in bytes of any safetensors dtype name (BOOL, U8, I8, F8_*, I16, F16, BF16, I32, F32, I64, F64...), 0 if unknown.
size_t safetensors_elem_size(const std::string& name);
const char* safetensors_dtype_name(DType t);  // f32 -> "F32", f16 -> "F16", bf16 -> "BF16"; others throw

}  // namespace hpcinfer
