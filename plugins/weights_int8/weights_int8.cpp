// weights plugin "int8": symmetric int8 weights with f16-valued scales; the matmul quantizes activations per call
// (W8A8, blocks of 32) and sums exact integer block dot products (AVX-512 VNNI where present), see
// kernels/cpu/matmul.hpp and matmul_int8.hpp.
//
// Scales: per group of `group_size` consecutive input features of a row (option group_size, default 32), or one
// per output channel (group_size 0). Why groups of 32 by default: it is GGUF Q8_0's layout, so Q8_0 tensors load
// by copying their blocks (no dequantize/requantize round trip: the f16 scale widens exactly to f32, q becomes
// q + 128), and a group's outlier only coarsens 32 weights. Per-channel reads 1 byte per weight instead of 1.125
// and multiplies once per output, at the cost of coarser steps in rows with outliers.
// Layout: the kernels' 16-row panels (kernels/cpu/matmul.hpp), built row by row from the row layout: per row, blocks
// {f32 scale, 32 u8}: 36 bytes per 32 weights = 1.125 bytes per weight, 1.78x fewer than bf16 (f16 scales would
// give 1.88x but cost a conversion per block in the decode loop).
// Other sources (f32, f16, bf16, Q4_0, Q4_1, Q8_0 with another group size) are dequantized to f32 and quantized at
// load: scale = max|w| / 127 rounded to f16, q = round(w / scale).
// Shards: the strategy's row/column ranges are cut here. Groups start at the shard's first column, so a shard on
// group boundaries is quantized exactly as the whole matrix is (tp ranks then hold the single process's values);
// a shard starting inside a group gets groups of its own (other scales: tp then changes the quantization noise, not
// its size), and a Q8_0 source is then dequantized and quantized again. Rows whose length is not a multiple of the
// group end with a short, zero-padded group.
#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "hpcinfer/plugin.hpp"
#include "hpcinfer/weight_format.hpp"
#include "kernels/cpu/convert.hpp"
#include "kernels/cpu/matmul.hpp"
#include "plugins/common/device_packed.hpp"
#include "plugins/common/shard_storage.hpp"

namespace hpcinfer::plugins {
namespace {

class Int8Packed final : public PackedMatrix {
 public:
  Int8Packed(const TensorView& src, Range rows, Range cols, int64_t group, Executor& ex)
      : rows_(rows.size()), cols_(cols.size()), group_(group), panel_bytes_(kernels::int8_panel_bytes(cols_, group)),
        ex_(ex),
        data_(size_t(kernels::panel_count(rows_)) * size_t(panel_bytes_)),
        channel_scales_(group == 0 ? size_t(kernels::panel_count(rows_) * kernels::kPanelRows) : 1) {
    // Copy Q8_0 blocks as they are when the shard covers whole blocks.
    const bool direct = src.dtype == DType::q8_0 && group_ == kQuantBlock && cols.begin % kQuantBlock == 0 &&
                        cols_ % kQuantBlock == 0;
    std::fill(channel_scales_.ptr, channel_scales_.ptr + channel_scales_.count, 0.0f);
    // One panel of 16 rows per block, in parallel (pack_blocks: each thread first touches what it will stream).
    pack_blocks(kernels::panel_count(rows_), ex, [&](int64_t p) {
      const int64_t r0 = p * kernels::kPanelRows, r1 = std::min(rows_, r0 + kernels::kPanelRows);
      kernels::init_int8_panel(cols_, group_, panel(p));
      if (!direct && group_ > 0) {  // the panel's rows as f32 [r1 - r0][cols_], quantized together
        thread_local std::vector<float> rows_f32;
        rows_f32.resize(size_t(kernels::kPanelRows * cols_));
        for (int64_t r = r0; r < r1; ++r)
          kernels::dequantize_row(src.dtype, src.row_ptr(rows.begin + r), cols.begin, cols_, &rows_f32[size_t((r - r0) * cols_)]);
        kernels::quantize_rows_to_int8_panel(rows_f32.data(), cols_, r1 - r0, cols_, group_, panel(p));
        return;
      }
      std::vector<float> tmp(direct ? 0 : static_cast<size_t>(cols_));
      std::vector<uint8_t> row_layout(static_cast<size_t>(kernels::int8_row_bytes(cols_, group_)));
      for (int64_t r = r0; r < r1; ++r) {
        uint8_t* dst = row_layout.data();
        const uint8_t* row = static_cast<const uint8_t*>(src.row_ptr(rows.begin + r));
        if (direct) {
          for (int64_t b = 0; b < cols_ / kQuantBlock; ++b) {
            const uint8_t* block = row + size_t(cols.begin / kQuantBlock + b) * (2 + 32);  // f16 d, 32 x int8
            uint16_t d16;
            std::memcpy(&d16, block, 2);
            const float d = kernels::f16_to_f32(d16);  // exact
            std::memcpy(dst + b * (4 + kQuantBlock), &d, 4);
            for (int i = 0; i < 32; ++i) dst[b * (4 + kQuantBlock) + 4 + i] = uint8_t(int(int8_t(block[2 + i])) + 128);
          }
        } else {
          kernels::dequantize_row(src.dtype, row, cols.begin, cols_, tmp.data());
          kernels::quantize_row_int8(tmp.data(), cols_, group_, dst, &channel_scales_.ptr[group_ == 0 ? r : 0]);
        }
        kernels::int8_row_to_panel(dst, cols_, group_, r % kernels::kPanelRows, panel(r / kernels::kPanelRows));
      }
    });
  }
  // Adopted from the packed-weight cache: the regions image() gives (panels; per-channel scales when group == 0).
  Int8Packed(const std::vector<HostBytes>& image, Range rows, Range cols, int64_t group, Executor& ex,
             std::shared_ptr<const void> owner)
      : rows_(rows.size()), cols_(cols.size()), group_(group), panel_bytes_(kernels::int8_panel_bytes(cols_, group)),
        ex_(ex),
        data_(region(image, 0, size_t(kernels::panel_count(rows_)) * size_t(panel_bytes_)), owner, "int8 panels"),
        channel_scales_(group == 0 ? HugeBuffer<float>(region(image, 1, size_t(kernels::panel_count(rows_)) *
                                                                           kernels::kPanelRows * sizeof(float)),
                                                       owner, "int8 channel scales")
                                   : HugeBuffer<float>(1)) {
    if (image.size() != (group == 0 ? 2u : 1u))
      throw std::invalid_argument("packed-weight cache: an int8 shard has " + std::to_string(group == 0 ? 2 : 1) +
                                  " regions, not " + std::to_string(image.size()));
  }
  int64_t rows() const override { return rows_; }
  int64_t cols() const override { return cols_; }
  size_t bytes() const override { return data_.count + (group_ == 0 ? channel_scales_.count * sizeof(float) : 0); }
  std::vector<HostBytes> image() const override {
    if (group_ == 0) return {data_.image(), channel_scales_.image()};
    return {data_.image()};
  }

  void matmul(const float* x, int64_t n, float* y) const override {
    const kernels::Int8Weights w{data_.ptr, channel_scales_.ptr, group_};
    for_row_blocks(rows_, cols_, n, ex_,
                   [&](int64_t r0, int64_t r1) { kernels::matmul_int8(x, n, w, cols_, y, rows_, r0, r1); });
  }
  void gather_rows(const int* ids, int64_t n, int64_t offset, float* out) const override {
    gather_rows_on_host(*this, ids, n, offset, out);
  }
  void dequantize_row(int64_t r, float* out) const override {
    kernels::dequantize_int8_panel_row(panel(r / kernels::kPanelRows), r % kernels::kPanelRows, cols_, group_,
                                       group_ == 0 ? channel_scales_.ptr[r] : 0.0f, out);
  }

 private:
  static HostBytes region(const std::vector<HostBytes>& image, size_t i, size_t want) {
    if (i >= image.size() || image[i].bytes != want)
      throw std::invalid_argument("packed-weight cache: int8 region " + std::to_string(i) + " should have " +
                                  std::to_string(want) + " bytes");
    return image[i];
  }
  uint8_t* panel(int64_t p) const { return data_.ptr + size_t(p) * size_t(panel_bytes_); }
  int64_t rows_, cols_, group_, panel_bytes_;
  Executor& ex_;
  HugeBuffer<uint8_t> data_;           // 16-row panels in the kernels' layout (kernels/cpu/matmul.hpp: Int8Weights)
  HugeBuffer<float> channel_scales_;   // [panels * 16] when group == 0 (zero past the last row)
};

// The shard on a device backend (device_matmul.hpp's int8 layout: Q[rows, ld] signed, S[rows, ld / group] f32),
// quantized by the same rule and so holding the same values as on the cpu backend (Q8_0 blocks copied likewise).
std::unique_ptr<PackedMatrix> pack_int8_on_device(const TensorView& src, Range rows, Range cols, int64_t group,
                                                  Backend& be) {
  const DeviceMatmulOps& ops = device_ops(be, "int8");
  DeviceMatrix m;
  m.type = DeviceWeights::int8;
  m.rows = rows.size();
  m.cols = cols.size();
  m.ld = group == 0 ? round_up(m.cols, kQuantBlock) : round_up(m.cols, group);
  m.group = group == 0 ? m.ld : group;
  const int64_t groups = m.ld / m.group;
  auto p = std::make_unique<DevicePacked>(be, ops, m, size_t(m.rows) * size_t(m.ld),
                                          size_t(m.rows) * size_t(groups) * sizeof(float));
  const bool direct = src.dtype == DType::q8_0 && group == kQuantBlock && cols.begin % kQuantBlock == 0 &&
                      m.cols % kQuantBlock == 0;
  std::vector<float> tmp(size_t(m.cols));
  std::vector<uint8_t> row_layout(static_cast<size_t>(kernels::int8_row_bytes(m.cols, group)));
  upload_rows(be, *p, size_t(m.ld), size_t(groups), [&](int64_t r, uint8_t* q, float* s) {
    const uint8_t* row = static_cast<const uint8_t*>(src.row_ptr(rows.begin + r));
    if (direct) {
      for (int64_t b = 0; b < m.cols / kQuantBlock; ++b) {
        const uint8_t* block = row + size_t(cols.begin / kQuantBlock + b) * (2 + 32);  // f16 d, 32 x int8
        uint16_t d16;
        std::memcpy(&d16, block, 2);
        s[b] = kernels::f16_to_f32(d16);
        std::memcpy(q + b * kQuantBlock, block + 2, kQuantBlock);
      }
      return;
    }
    kernels::dequantize_row(src.dtype, row, cols.begin, m.cols, tmp.data());
    float channel = 0.0f;
    kernels::quantize_row_int8(tmp.data(), m.cols, group, row_layout.data(), &channel);
    if (group == 0) {  // ceil(cols / 32) * 32 u8 (q + 128), the scale apart
      s[0] = channel;
      for (int64_t c = 0; c < m.cols; ++c) q[c] = uint8_t(int(row_layout[size_t(c)]) - 128);
      return;
    }
    for (int64_t b = 0; b < groups; ++b) {  // blocks {f32 scale, group x u8 (q + 128)}
      const uint8_t* blk = row_layout.data() + size_t(b) * size_t(4 + group);
      std::memcpy(&s[b], blk, 4);
      const int64_t n = std::min(group, m.cols - b * group);
      for (int64_t i = 0; i < n; ++i) q[b * group + i] = uint8_t(int(blk[4 + i]) - 128);
    }
  });
  return p;
}

class Int8Format final : public WeightFormat {
 public:
  std::string name() const override { return "int8"; }
  bool accepts(DType) const override { return true; }
  bool supports_backend(const std::string& backend) const override { return backend == "cpu" || backend == "cuda"; }
  size_t bytes(int64_t rows, int64_t cols) const override {
    const size_t panels = size_t(kernels::panel_count(rows));
    return panels * size_t(kernels::int8_panel_bytes(cols, group_)) +
           (group_ == 0 ? panels * size_t(kernels::kPanelRows) * sizeof(float) : 0);
  }
  std::unique_ptr<PackedMatrix> pack(const TensorView& src, Range rows, Range cols, Backend& be) const override {
    check_ranges(src, rows, cols);
    if (be.name() == "cuda") return pack_int8_on_device(src, rows, cols, group_, be);
    Executor& ex = cpu_executor(be, "int8");
    return std::make_unique<Int8Packed>(src, rows, cols, group_, ex);
  }
  // Bump the version when the panel layout or the quantizer's bytes change.
  std::string image_key() const override { return "int8/panels-v1/group" + std::to_string(group_); }
  std::unique_ptr<PackedMatrix> adopt(const std::vector<HostBytes>& image, Range rows, Range cols, Backend& be,
                                      std::shared_ptr<const void> owner) const override {
    if (be.name() != "cpu") return nullptr;
    return std::make_unique<Int8Packed>(image, rows, cols, group_, cpu_executor(be, "int8"), std::move(owner));
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
    if (g != 0 && (g < 32 || (g & (g - 1)) != 0))
      throw std::invalid_argument("weights int8: group_size must be 0 (per channel) or a power of two >= 32, got '" +
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
