// A dense packed shard stored as f32 (row layout) or bf16 (16-row panels, kernels/cpu/matmul.hpp), shared by the
// weights_f32 and weights_bf16 plugins.
// Header-only so each plugin .so carries its own copy (plugins link nothing of the core).
#pragma once

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "hpcinfer/weight_format.hpp"
#include "kernels/cpu/convert.hpp"
#include "kernels/cpu/matmul.hpp"
#include "plugins/common/shard_storage.hpp"

namespace hpcinfer::plugins {

// Storage: float (f32: [rows, cols] row-major) or uint16_t (bf16 bit patterns in panels of 16 rows,
// kernels::bf16_panel_index; the last panel zero-padded). The shard only.
template <typename Storage>
class DensePacked final : public PackedMatrix {
  static constexpr bool kBf16 = sizeof(Storage) == 2;

 public:
  DensePacked(const TensorView& src, Range rows, Range cols)
      : rows_(rows.size()), cols_(cols.size()), data_(stored_rows(rows_) * size_t(cols_)) {
    check_ranges(src, rows, cols);
    if constexpr (kBf16) std::memset(data_.ptr, 0, data_.count * sizeof(Storage));
    std::vector<float> tmp(static_cast<size_t>(cols_));
    std::vector<uint16_t> row16(kBf16 ? static_cast<size_t>(cols_) : 0);
    for (int64_t r = 0; r < rows_; ++r) {
      const void* row = src.row_ptr(rows.begin + r);
      if constexpr (kBf16) {
        if (src.dtype == DType::bf16) {  // exact copy, no rounding
          std::memcpy(row16.data(), static_cast<const uint16_t*>(row) + cols.begin, size_t(cols_) * 2);
        } else {
          kernels::dequantize_row(src.dtype, row, cols.begin, cols_, tmp.data());
          for (int64_t c = 0; c < cols_; ++c) row16[size_t(c)] = kernels::f32_to_bf16(tmp[size_t(c)]);
        }
        for (int64_t c = 0; c < cols_; ++c) data_.ptr[kernels::bf16_panel_index(r, c, cols_)] = row16[size_t(c)];
      } else {
        kernels::dequantize_row(src.dtype, row, cols.begin, cols_, data_.ptr + size_t(r) * size_t(cols_));
      }
    }
  }
  int64_t rows() const override { return rows_; }
  int64_t cols() const override { return cols_; }
  size_t bytes() const override { return data_.count * sizeof(Storage); }

  // y[n, rows] = x[n, cols] W^T
  void matmul(const float* x, int64_t n, float* y, Executor& ex) const override {
    for_row_blocks(rows_, cols_, n, ex, [&](int64_t r0, int64_t r1) {
      if constexpr (kBf16)
        kernels::matmul_bf16(x, n, data_.ptr, cols_, y, rows_, r0, r1);
      else
        kernels::matmul_f32(x, n, data_.ptr, cols_, y, rows_, r0, r1);
    });
  }
  void dequantize_row(int64_t r, float* out) const override {
    if constexpr (kBf16)
      for (int64_t c = 0; c < cols_; ++c) out[c] = kernels::bf16_to_f32(data_.ptr[kernels::bf16_panel_index(r, c, cols_)]);
    else
      std::memcpy(out, data_.ptr + size_t(r) * size_t(cols_), size_t(cols_) * 4);
  }

 private:
  static size_t stored_rows(int64_t rows) {
    return size_t(kBf16 ? kernels::panel_count(rows) * kernels::kPanelRows : rows);
  }
  int64_t rows_, cols_;
  HugeBuffer<Storage> data_;
};

// A WeightFormat with no options, packing into DensePacked<Storage>.
template <typename Storage>
class DenseFormat final : public WeightFormat {
 public:
  explicit DenseFormat(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  bool accepts(DType) const override { return true; }  // every source dtype dequantizes exactly to f32 first
  std::unique_ptr<PackedMatrix> pack(const TensorView& src, Range rows, Range cols) const override {
    return std::make_unique<DensePacked<Storage>>(src, rows, cols);
  }
  void set_option(const std::string& key, const std::string&) override {
    throw std::invalid_argument("weights plugin '" + name_ + "' has no option '" + key + "'");
  }

 private:
  std::string name_;
};

}  // namespace hpcinfer::plugins
