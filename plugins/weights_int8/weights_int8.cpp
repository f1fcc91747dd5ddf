// weights plugin "int8": symmetric int8 weights with f16-valued scales, f32 activations (weight-only quantization).
//
// Scales: per group of `group_size` consecutive input features of a row (option group_size, default 32), or one
// per output channel (group_size 0). Why groups of 32 by default: it is GGUF Q8_0's layout, so Q8_0 tensors load
// by copying their blocks (no dequantize/requantize round trip), and a group's outlier only coarsens 32 weights.
// Scales are f16 values held as f32 (a broadcast load per 16 weights in the kernel, no conversion): 1 byte +
// 4/32 bytes per weight = 1.125 bytes, 1.78x fewer than bf16 (f16 storage would give 1.88x but costs a conversion
// per slice in the decode loop, which is where the time goes). Per-channel (0) reads 1 byte
// per weight and multiplies once per output, at the cost of coarser steps in rows with outliers.
// Other sources (f32, f16, bf16, Q4_0, Q4_1, Q8_0 with another group size) are dequantized to f32 and quantized at
// load: scale = max|w| / 127 rounded to f16, q = round(w / scale).
// Shards: the strategy's row/column ranges are cut here; a column range must start on a group boundary and end on
// one or at the row's end (rows whose length is not a multiple of the group end with a short group).
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "hpcinfer/plugin.hpp"
#include "hpcinfer/weight_format.hpp"
#include "kernels/cpu/convert.hpp"
#include "kernels/cpu/matmul.hpp"
#include "plugins/common/shard_storage.hpp"

namespace hpcinfer::plugins {
namespace {

class Int8Packed final : public PackedMatrix {
 public:
  Int8Packed(const TensorView& src, Range rows, Range cols, int64_t group)
      : rows_(rows.size()), cols_(cols.size()), group_(group),
        q_(size_t(rows_) * size_t(cols_)),
        scales_(size_t(rows_) * size_t(group > 0 ? (cols_ + group - 1) / group : 1)) {
    const int64_t per_row = group_ > 0 ? (cols_ + group_ - 1) / group_ : 1;
    const bool direct = src.dtype == DType::q8_0 && group_ == kQuantBlock;  // copy Q8_0 blocks as they are
    std::vector<float> tmp(direct ? 0 : static_cast<size_t>(cols_));
    for (int64_t r = 0; r < rows_; ++r) {
      int8_t* q = q_.ptr + size_t(r) * size_t(cols_);
      float* s = scales_.ptr + size_t(r) * size_t(per_row);
      const uint8_t* row = static_cast<const uint8_t*>(src.row_ptr(rows.begin + r));
      if (direct) {
        for (int64_t b = 0; b < per_row; ++b) {
          const uint8_t* block = row + size_t(cols.begin / kQuantBlock + b) * (2 + 32);  // f16 d, 32 x int8
          uint16_t d;
          std::memcpy(&d, block, 2);
          s[b] = kernels::f16_to_f32(d);  // exact
          std::memcpy(q + b * kQuantBlock, block + 2, 32);
        }
        continue;
      }
      kernels::dequantize_row(src.dtype, row, cols.begin, cols_, tmp.data());
      kernels::quantize_row_int8(tmp.data(), cols_, group_, q, s);
    }
  }
  int64_t rows() const override { return rows_; }
  int64_t cols() const override { return cols_; }
  size_t bytes() const override { return q_.count + scales_.count * sizeof(float); }

  void matmul(const float* x, int64_t n, float* y, Executor& ex) const override {
    const kernels::Int8Weights w{q_.ptr, scales_.ptr, group_};
    for_row_blocks(rows_, ex, [&](int64_t r0, int64_t r1) { kernels::matmul_int8(x, n, w, cols_, y, rows_, r0, r1); });
  }
  void dequantize_row(int64_t r, float* out) const override {
    const int8_t* q = q_.ptr + size_t(r) * size_t(cols_);
    const int64_t g = group_ > 0 ? group_ : cols_, per_row = group_ > 0 ? (cols_ + group_ - 1) / group_ : 1;
    for (int64_t c = 0; c < cols_; ++c)
      out[c] = float(q[c]) * scales_.ptr[size_t(r) * size_t(per_row) + size_t(c / g)];
  }

 private:
  int64_t rows_, cols_, group_;
  HugeBuffer<int8_t> q_;         // [rows, cols]
  HugeBuffer<float> scales_;     // f16 values: [rows, ceil(cols / group)] or [rows]
};

class Int8Format final : public WeightFormat {
 public:
  std::string name() const override { return "int8"; }
  bool accepts(DType) const override { return true; }
  std::unique_ptr<PackedMatrix> pack(const TensorView& src, Range rows, Range cols) const override {
    check_ranges(src, rows, cols);
    // A shard's columns start on a group boundary and end on one or at the row's end (a short last group).
    if (group_ > 0 && (cols.begin % group_ != 0 || (cols.end % group_ != 0 && cols.end != src.cols)))
      throw std::invalid_argument("weights int8: tensor " + src.name + " columns [" + std::to_string(cols.begin) +
                                  ", " + std::to_string(cols.end) + ") do not fall on group_size " +
                                  std::to_string(group_) + " boundaries (set group_size 0 for per-channel scales, " +
                                  "or a group size dividing the shard)");
    return std::make_unique<Int8Packed>(src, rows, cols, group_);
  }
  void set_option(const std::string& key, const std::string& value) override {
    if (key != "group_size") throw std::invalid_argument("weights plugin 'int8' has no option '" + key + "' (it has group_size)");
    int64_t g = -1;
    try {
      size_t used = 0;
      g = std::stoll(value, &used);
      if (used != value.size()) g = -1;
    } catch (const std::exception&) {
    }
    if (g != 0 && (g < 16 || (g & (g - 1)) != 0))
      throw std::invalid_argument("weights int8: group_size must be 0 (per channel) or a power of two >= 16, got '" +
                                  value + "'");
    group_ = g;
  }

 private:
  int64_t group_ = kQuantBlock;
};

void* create() { return static_cast<WeightFormat*>(new Int8Format()); }
const PluginInfo kInfo{kPluginAbiVersion, PluginKind::weights, "int8", "1.0.0",
                       "symmetric int8 weights, scales per group (default 32, Q8_0 loads directly) or per channel",
                       &create, nullptr};

}  // namespace
}  // namespace hpcinfer::plugins

HPCINFER_EXPORT_PLUGIN(hpcinfer::plugins::kInfo)
