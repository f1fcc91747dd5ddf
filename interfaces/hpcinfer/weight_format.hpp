// WeightFormat (quantization) contract: how a logical [rows x cols] weight matrix is packed in memory, how a shard
// (a row range and a column range) is cut from it, and the matmul that uses it.
//
// Strategies speak only in logical ranges; a format knows nothing of strategies. The core asks:
//   pack(full_view, rows_range, cols_range) -> PackedMatrix holding W[rows_range, cols_range]
// where full_view is the whole logical tensor from the file (f32/f16/bf16, or a GGUF block type if the format says
// it accepts it). Only the bytes of the requested shard are read from full_view.
//
// Ownership: PackedMatrix owns its packed copy. Threading: pack() may be called from one thread at a time;
// matmul() on the same PackedMatrix may run concurrently from several threads (it is const).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "hpcinfer/tensor.hpp"

namespace hpcinfer {

class PackedMatrix {
 public:
  virtual ~PackedMatrix() = default;
  virtual int64_t rows() const = 0;    // output features of this shard
  virtual int64_t cols() const = 0;    // input features of this shard
  virtual size_t bytes() const = 0;    // memory held by the packed weights
  // y[n, rows] = x[n, cols] * W^T, f32 activations in and out, accumulation in f32 (or exact integers).
  // Runs on `ex`'s threads. x and y do not alias.
  virtual void matmul(const float* x, int64_t n, float* y, Executor& ex) const = 0;
  // Row r of the shard as f32 [cols] (embedding lookups read weights this way).
  virtual void dequantize_row(int64_t r, float* out) const = 0;
};

class WeightFormat {
 public:
  virtual ~WeightFormat() = default;
  virtual std::string name() const = 0;
  // Whether pack() can read this source dtype directly.
  virtual bool accepts(DType source) const = 0;
  // Throws std::invalid_argument naming src.name when the ranges fall outside the tensor or do not fit the format
  // (e.g. a column range that splits a quantization group).
  virtual std::unique_ptr<PackedMatrix> pack(const TensorView& src, Range rows, Range cols) const = 0;
  // Options, e.g. "group_size" for int8. Unknown keys throw std::invalid_argument naming the key.
  virtual void set_option(const std::string& key, const std::string& value) = 0;
};

}  // namespace hpcinfer
