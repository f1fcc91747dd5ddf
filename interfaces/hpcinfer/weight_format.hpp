// WeightFormat (quantization) contract: how a logical [rows x cols] weight matrix is packed on a backend, how a shard
// (a row range and a column range) is cut from it, how many bytes that takes, and the matmul that uses it.
//
// Strategies speak only in logical ranges; a format knows nothing of strategies. The core asks:
//   pack(full_view, rows_range, cols_range, backend) -> PackedMatrix holding W[rows_range, cols_range] on `backend`
// where full_view is the whole logical tensor from the file (f32/f16/bf16, or a GGUF block type if the format says
// it accepts it). Only the bytes of the requested shard are read from full_view.
//
// Backends: a format packs only for the backends it names in supports_backend() (by Backend::name()); the core
// refuses other combinations when it reads the configuration, before any weights move.
// Ownership: PackedMatrix owns its packed copy, in its backend's memory; the backend outlives it. An adopted matrix
// (adopt(): the packed-weight cache) reads memory its `owner` keeps alive instead, read-only.
// Threading: pack() from one thread at a time; a PackedMatrix's calls from the backend's caller thread (they run on
// the backend's threads / stream).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hpcinfer/backend.hpp"
#include "hpcinfer/tensor.hpp"

namespace hpcinfer {

// A region of host memory (a packed matrix's bytes).
struct HostBytes {
  const void* data = nullptr;
  size_t bytes = 0;
};

class PackedMatrix {
 public:
  virtual ~PackedMatrix() = default;
  virtual int64_t rows() const = 0;    // output features of this shard
  virtual int64_t cols() const = 0;    // input features of this shard
  virtual size_t bytes() const = 0;    // memory held by the packed weights (= WeightFormat::bytes(rows, cols))
  // y[n, rows] = x[n, cols] * W^T: f32 activations in and out (backend memory), accumulation in f32 (or exact
  // integers). x and y do not alias.
  virtual void matmul(const float* x, int64_t n, float* y) const = 0;
  // Embedding lookup: out[i, cols] = row (ids[i] - row_offset) when that is in [0, rows), else zeros (a vocab shard
  // leaves other ranks' rows to them). ids and out in backend memory.
  virtual void gather_rows(const int* ids, int64_t n, int64_t row_offset, float* out) const = 0;
  // Row r as f32 [cols] in HOST memory (tests, tools).
  virtual void dequantize_row(int64_t r, float* out) const = 0;
  // The packed bytes as host memory regions, in the order the format's adopt() takes them back (the packed-weight
  // cache saves them). Empty: this matrix cannot be saved (device memory, or a format that does not adopt).
  virtual std::vector<HostBytes> image() const { return {}; }
};

class WeightFormat {
 public:
  virtual ~WeightFormat() = default;
  virtual std::string name() const = 0;
  // Whether pack() can read this source dtype directly.
  virtual bool accepts(DType source) const = 0;
  // Whether it packs for the backend of this name ("cpu", "cuda", ...).
  virtual bool supports_backend(const std::string& backend) const = 0;
  // Bytes a packed [rows x cols] shard takes, without packing one (the planner's figure; padding included).
  virtual size_t bytes(int64_t rows, int64_t cols) const = 0;
  // Throws std::invalid_argument naming src.name when the ranges fall outside the tensor or do not fit the format,
  // or when the backend is not one it supports.
  virtual std::unique_ptr<PackedMatrix> pack(const TensorView& src, Range rows, Range cols, Backend& backend) const = 0;
  // Options, e.g. "group_size" for int8. Unknown keys throw std::invalid_argument naming the key.
  virtual void set_option(const std::string& key, const std::string& value) = 0;
  // The packed-weight cache (core/runtime/packed_cache.hpp). image_key(): changes whenever pack() would write other
  // bytes for the same source and ranges (the layout's version, the options); "" = this format is never cached.
  // adopt(): what pack(src, rows, cols, backend) made, rebuilt over `image` (the regions its image() gave, now in
  // memory `owner` keeps alive and nobody writes: a mapped file); nullptr where the format cannot (then it packs).
  // Throws std::invalid_argument when the regions' sizes do not fit a [rows x cols] shard.
  virtual std::string image_key() const { return ""; }
  virtual std::unique_ptr<PackedMatrix> adopt(const std::vector<HostBytes>& /*image*/, Range /*rows*/, Range /*cols*/,
                                              Backend& /*backend*/, std::shared_ptr<const void> /*owner*/) const {
    return nullptr;
  }
};

}  // namespace hpcinfer
