// GGUF v2/v3 reader (llama.cpp's file format): header, metadata key/values, tensor infos, tensor data views.
// Memory-mapped; tensor data is not read until used. Every error names the file and the key or tensor.
//
// Layout (little-endian): magic "GGUF", u32 version, u64 n_tensors, u64 n_kv, then n_kv x (string key, u32 type,
// value), then n_tensors x (string name, u32 n_dims, u64 dims[n_dims] (dims[0] = innermost / columns), u32 ggml
// type, u64 offset), then padding to `general.alignment` (default 32), then the data section.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/formats/mapped_file.hpp"
#include "hpcinfer/tensor.hpp"

namespace hpcinfer {

struct GgufValue;
using GgufArray = std::vector<GgufValue>;
struct GgufValue {
  // Integers of every width are widened to int64/uint64; floats to double.
  std::variant<uint64_t, int64_t, double, bool, std::string, std::shared_ptr<GgufArray>> v;
};

struct GgufTensorInfo {
  std::string name;              // name in the file, e.g. "blk.0.attn_q.weight"
  std::vector<int64_t> dims;     // GGUF order: dims[0] is the innermost (contiguous) dimension
  uint32_t ggml_type = 0;        // 0 F32, 1 F16, 2 Q4_0, 3 Q4_1, 8 Q8_0, 30 BF16
  DType dtype = DType::f32;
  uint64_t offset = 0;           // from the start of the data section
  size_t bytes = 0;
  // As a logical row-major matrix: rows = product of dims[1..], cols = dims[0].
  int64_t rows() const;
  int64_t cols() const { return dims.empty() ? 1 : dims[0]; }
};

class GgufFile {
 public:
  explicit GgufFile(const std::string& path);  // parses and validates; throws std::runtime_error naming the file

  const std::string& path() const { return file_->path(); }
  uint32_t version() const { return version_; }

  bool has(const std::string& key) const { return kv_.count(key) != 0; }
  const GgufValue* find(const std::string& key) const;
  // Typed getters: throw std::runtime_error "FILE: metadata key KEY: missing / has type X, expected Y".
  std::string get_string(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  std::vector<std::string> get_string_array(const std::string& key) const;
  std::vector<double> get_float_array(const std::string& key) const;
  std::vector<int64_t> get_int_array(const std::string& key) const;
  // Optional variants return the fallback when the key is absent (but still throw on a wrong type).
  int64_t get_int_or(const std::string& key, int64_t fallback) const;
  double get_float_or(const std::string& key, double fallback) const;
  std::string get_string_or(const std::string& key, const std::string& fallback) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(const std::string& name) const;
  // A view of the tensor's bytes inside the mapping, as a logical [rows x cols] matrix.
  TensorView view(const GgufTensorInfo& t) const;
  std::vector<std::string> keys() const;

 private:
  std::shared_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  std::map<std::string, GgufValue> kv_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
  const uint8_t* data_section_ = nullptr;
};

}  // namespace hpcinfer
