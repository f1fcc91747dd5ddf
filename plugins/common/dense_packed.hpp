// A dense packed shard stored as f32 (row layout) or bf16 (16-row panels or pair panels, kernels/cpu/matmul.hpp),
// shared by the weights_f32, weights_bf16 and weights_bf16dot plugins.
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
#include "plugins/common/device_packed.hpp"
#include "plugins/common/shard_storage.hpp"

namespace hpcinfer::plugins {

// How a DensePacked shard lays out its values, and which kernel reads them.
struct F32Rows {  // f32, [rows, cols] row-major
  using Storage = float;
  static size_t stored(int64_t rows, int64_t cols) { return size_t(rows) * size_t(cols); }
  static size_t index(int64_t r, int64_t c, int64_t cols) { return size_t(r) * size_t(cols) + size_t(c); }
  static void matmul(const float* x, int64_t n, const float* w, int64_t cols, float* y, int64_t ldy, int64_t r0,
                     int64_t r1) {
    kernels::matmul_f32(x, n, w, cols, y, ldy, r0, r1);
  }
};
struct Bf16Panels {  // bf16 bit patterns in panels of 16 rows (kernels::bf16_panel_index), f32 activations
  using Storage = uint16_t;
  static size_t stored(int64_t rows, int64_t cols) {
    return size_t(kernels::panel_count(rows) * kernels::kPanelRows) * size_t(cols);
  }
  static size_t index(int64_t r, int64_t c, int64_t cols) { return kernels::bf16_panel_index(r, c, cols); }
  static void matmul(const float* x, int64_t n, const uint16_t* w, int64_t cols, float* y, int64_t ldy, int64_t r0,
                     int64_t r1) {
    kernels::matmul_bf16(x, n, w, cols, y, ldy, r0, r1);
  }
};
struct Bf16PairPanels {  // bf16 in pair panels (kernels::bf16_pair_panel_index), bf16 activations (AVX512-BF16)
  using Storage = uint16_t;
  static size_t stored(int64_t rows, int64_t cols) {
    return size_t(kernels::panel_count(rows) * kernels::kPanelRows) * size_t((cols + 1) / 2 * 2);
  }
  static size_t index(int64_t r, int64_t c, int64_t cols) { return kernels::bf16_pair_panel_index(r, c, cols); }
  static void matmul(const float* x, int64_t n, const uint16_t* w, int64_t cols, float* y, int64_t ldy, int64_t r0,
                     int64_t r1) {
    kernels::matmul_bf16dot(x, n, w, cols, y, ldy, r0, r1);
  }
};

// A dense shard of `Layout` (the shard only; padding zero).
template <typename Layout>
class DensePacked final : public PackedMatrix {
  using Storage = typename Layout::Storage;
  static constexpr bool kBf16 = sizeof(Storage) == 2;

 public:
  // Blocks of kPanelRows rows in parallel (pack_blocks): each zeroes its own storage, then writes its rows.
  DensePacked(const TensorView& src, Range rows, Range cols, Executor& ex)
      : rows_(rows.size()), cols_(cols.size()), ex_(ex), data_(Layout::stored(rows_, cols_)) {
    check_ranges(src, rows, cols);
    constexpr int64_t R = kernels::kPanelRows;
    const int64_t blocks = kernels::panel_count(rows_);
    pack_blocks(blocks, ex, [&](int64_t p) {
      const size_t begin = Layout::index(p * R, 0, cols_);
      const size_t end = p + 1 < blocks ? Layout::index((p + 1) * R, 0, cols_) : data_.count;
      std::memset(data_.ptr + begin, 0, (end - begin) * sizeof(Storage));
      std::vector<float> tmp(static_cast<size_t>(cols_));
      for (int64_t r = p * R; r < std::min(rows_, (p + 1) * R); ++r) {
        const void* row = src.row_ptr(rows.begin + r);
        if constexpr (kBf16) {
          if (src.dtype == DType::bf16) {  // exact copy, no rounding
            const uint16_t* in = static_cast<const uint16_t*>(row) + cols.begin;
            for (int64_t c = 0; c < cols_; ++c) data_.ptr[Layout::index(r, c, cols_)] = in[c];
          } else {
            kernels::dequantize_row(src.dtype, row, cols.begin, cols_, tmp.data());
            for (int64_t c = 0; c < cols_; ++c) data_.ptr[Layout::index(r, c, cols_)] = kernels::f32_to_bf16(tmp[size_t(c)]);
          }
        } else {
          kernels::dequantize_row(src.dtype, row, cols.begin, cols_, data_.ptr + Layout::index(r, 0, cols_));
        }
      }
    });
  }
  // Adopted from the packed-weight cache: the one region image() gives.
  DensePacked(const std::vector<HostBytes>& image, Range rows, Range cols, Executor& ex, std::shared_ptr<const void> owner)
      : rows_(rows.size()), cols_(cols.size()), ex_(ex), data_(one_region(image, rows_, cols_), std::move(owner), "dense") {}
  int64_t rows() const override { return rows_; }
  int64_t cols() const override { return cols_; }
  size_t bytes() const override { return data_.count * sizeof(Storage); }
  std::vector<HostBytes> image() const override { return {data_.image()}; }

  // y[n, rows] = x[n, cols] W^T
  void matmul(const float* x, int64_t n, float* y) const override {
    for_row_blocks(rows_, cols_, n, ex_,
                   [&](int64_t r0, int64_t r1) { Layout::matmul(x, n, data_.ptr, cols_, y, rows_, r0, r1); });
  }
  void gather_rows(const int* ids, int64_t n, int64_t offset, float* out) const override {
    gather_rows_on_host(*this, ids, n, offset, out);
  }
  void dequantize_row(int64_t r, float* out) const override {
    for (int64_t c = 0; c < cols_; ++c) {
      const Storage v = data_.ptr[Layout::index(r, c, cols_)];
      if constexpr (kBf16)
        out[c] = kernels::bf16_to_f32(v);
      else
        out[c] = v;
    }
  }

 private:
  static HostBytes one_region(const std::vector<HostBytes>& image, int64_t rows, int64_t cols) {
    const size_t want = Layout::stored(rows, cols) * sizeof(Storage);
    if (image.size() != 1 || image[0].bytes != want)
      throw std::invalid_argument("packed-weight cache: a [" + std::to_string(rows) + " x " + std::to_string(cols) +
                                  "] dense shard is one region of " + std::to_string(want) + " bytes");
    return image[0];
  }
  int64_t rows_, cols_;
  Executor& ex_;
  HugeBuffer<Storage> data_;
};

// A WeightFormat with no options, packing into DensePacked<Layout> on the cpu backend and, when `on_cuda`, into the
// device matmul table's row layout (same element type) on the cuda backend.
template <typename Layout>
class DenseFormat final : public WeightFormat {
 public:
  explicit DenseFormat(std::string name, bool on_cuda = false) : name_(std::move(name)), on_cuda_(on_cuda) {}
  std::string name() const override { return name_; }
  bool accepts(DType) const override { return true; }  // every source dtype dequantizes exactly to f32 first
  bool supports_backend(const std::string& backend) const override {
    return backend == "cpu" || (on_cuda_ && backend == "cuda");
  }
  size_t bytes(int64_t rows, int64_t cols) const override {
    return Layout::stored(rows, cols) * sizeof(typename Layout::Storage);
  }
  std::unique_ptr<PackedMatrix> pack(const TensorView& src, Range rows, Range cols, Backend& be) const override {
    if (on_cuda_ && be.name() == "cuda")
      return pack_dense_on_device(src, rows, cols, be, name_, sizeof(typename Layout::Storage) == 2);
    return std::make_unique<DensePacked<Layout>>(src, rows, cols, cpu_executor(be, name_));
  }
  void set_option(const std::string& key, const std::string&) override {
    throw std::invalid_argument("weights plugin '" + name_ + "' has no option '" + key + "'");
  }
  // Bump the version when Layout's bytes change.
  std::string image_key() const override { return name_ + "/dense-v1/" + std::to_string(kernels::kPanelRows); }
  std::unique_ptr<PackedMatrix> adopt(const std::vector<HostBytes>& image, Range rows, Range cols, Backend& be,
                                      std::shared_ptr<const void> owner) const override {
    if (be.name() != "cpu") return nullptr;
    return std::make_unique<DensePacked<Layout>>(image, rows, cols, cpu_executor(be, name_), std::move(owner));
  }

 private:
  std::string name_;
  bool on_cuda_;
};

}  // namespace hpcinfer::plugins
