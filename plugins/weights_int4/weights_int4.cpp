// weights plugin "int4": symmetric 4-bit weights, one f16 scale per 32 inputs (GGUF Q4_0's values, 4.5 bits per
// weight); the matmul quantizes activations per call (W4A8, blocks of 32) and sums exact integer block dot products
// (AVX-512 VNNI, AVX2 or portable code, bitwise alike), see kernels/cpu/matmul.hpp and matmul_int4.hpp.
// Sources: GGUF Q4_0 and Q4_1 blocks are copied as they are (no dequantize / requantize round trip; Q4_1 keeps its
// per-block minimum: 5 bits per weight); every other dtype (f32, f16, bf16, Q8_0) is dequantized to f32 and quantized
// at load by Q4_0's rule (the value of largest magnitude maps to -8 x d).
// Shards: the strategy's row/column ranges are cut here. Blocks start at the shard's first column, so a shard on a
// 32-column boundary holds the whole matrix's values bitwise; a shard starting inside a block gets blocks of its own
// (quantized as a matrix of those columns would be), and a Q4_0 / Q4_1 source is then dequantized and quantized again
// (symmetric blocks).
// CPU backend only (the cuda backend has no 4-bit matmul yet: it refuses with the plugin's name).
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
#include "plugins/common/shard_storage.hpp"

namespace hpcinfer::plugins {
namespace {

class Int4Packed final : public PackedMatrix {
 public:
  Int4Packed(const TensorView& src, Range rows, Range cols, Executor& ex)
      : rows_(rows.size()), cols_(cols.size()), has_min_(copies_blocks(src, cols) && src.dtype == DType::q4_1),
        panel_bytes_(kernels::int4_panel_bytes(cols_, has_min_)), ex_(ex),
        data_(size_t(kernels::panel_count(rows_)) * size_t(panel_bytes_)) {
    const bool direct = copies_blocks(src, cols);
    // One panel of 16 rows per block, in parallel (pack_blocks: each thread first touches what it will stream).
    pack_blocks(kernels::panel_count(rows_), ex, [&](int64_t p) {
      std::vector<float> tmp(direct ? 0 : size_t(cols_));
      std::vector<uint8_t> row_layout(direct ? 0 : size_t(kernels::int4_row_bytes(cols_)));
      uint8_t* panel = data_.ptr + size_t(p) * size_t(panel_bytes_);
      kernels::init_int4_panel(cols_, has_min_, panel);
      for (int64_t r = p * kernels::kPanelRows; r < std::min(rows_, (p + 1) * kernels::kPanelRows); ++r) {
        const uint8_t* row = static_cast<const uint8_t*>(src.row_ptr(rows.begin + r));
        const uint8_t* blocks = row + size_t(cols.begin / kQuantBlock) * size_t(kernels::int4_block_bytes(has_min_));
        if (!direct) {
          kernels::dequantize_row(src.dtype, row, cols.begin, cols_, tmp.data());
          kernels::quantize_row_int4(tmp.data(), cols_, row_layout.data());
          blocks = row_layout.data();
        }
        kernels::int4_row_to_panel(blocks, cols_, has_min_, r % kernels::kPanelRows, panel);
      }
    });
  }
  // Adopted from the packed-weight cache: the one region image() gives (its size says whether Q4_1's minimums came).
  Int4Packed(const std::vector<HostBytes>& image, Range rows, Range cols, Executor& ex, std::shared_ptr<const void> owner)
      : rows_(rows.size()), cols_(cols.size()),
        has_min_(image.size() == 1 && image[0].bytes == panels_bytes(rows_, cols_, true) &&
                 panels_bytes(rows_, cols_, true) != panels_bytes(rows_, cols_, false)),
        panel_bytes_(kernels::int4_panel_bytes(cols_, has_min_)), ex_(ex),
        data_(image.size() == 1 ? image[0] : HostBytes{}, std::move(owner), "int4 panels") {
    if (image.size() != 1 || image[0].bytes != panels_bytes(rows_, cols_, has_min_))
      throw std::invalid_argument("packed-weight cache: a [" + std::to_string(rows_) + " x " + std::to_string(cols_) +
                                  "] int4 shard is one region of " + std::to_string(panels_bytes(rows_, cols_, false)) +
                                  " bytes (" + std::to_string(panels_bytes(rows_, cols_, true)) + " with Q4_1 minimums)");
  }
  int64_t rows() const override { return rows_; }
  int64_t cols() const override { return cols_; }
  size_t bytes() const override { return data_.count; }
  std::vector<HostBytes> image() const override { return {data_.image()}; }

  void matmul(const float* x, int64_t n, float* y) const override {
    for_row_blocks(rows_, cols_, n, ex_,
                   [&](int64_t r0, int64_t r1) { kernels::matmul_int4(x, n, {data_.ptr, has_min_}, cols_, y, rows_, r0, r1); });
  }
  void gather_rows(const int* ids, int64_t n, int64_t offset, float* out) const override {
    gather_rows_on_host(*this, ids, n, offset, out);
  }
  void dequantize_row(int64_t r, float* out) const override {
    kernels::dequantize_int4_panel_row(data_.ptr + size_t(r / kernels::kPanelRows) * size_t(panel_bytes_),
                                       r % kernels::kPanelRows, cols_, has_min_, out);
  }

 private:
  static size_t panels_bytes(int64_t rows, int64_t cols, bool has_min) {
    return size_t(kernels::panel_count(rows)) * size_t(kernels::int4_panel_bytes(cols, has_min));
  }
  // Q4_0 / Q4_1 blocks are copied when the shard covers whole blocks.
  static bool copies_blocks(const TensorView& src, Range cols) {
    return (src.dtype == DType::q4_0 || src.dtype == DType::q4_1) && cols.begin % kQuantBlock == 0 &&
           cols.size() % kQuantBlock == 0;
  }
  int64_t rows_, cols_;
  bool has_min_;  // Q4_1 blocks copied: d and m per block
  int64_t panel_bytes_;
  Executor& ex_;
  HugeBuffer<uint8_t> data_;  // 16-row panels in the kernels' layout (kernels/cpu/matmul.hpp: matmul_int4)
};

class Int4Format final : public WeightFormat {
 public:
  std::string name() const override { return "int4"; }
  bool accepts(DType) const override { return true; }
  bool supports_backend(const std::string& backend) const override { return backend == "cpu"; }
  // Symmetric blocks (4.5 bits per weight); a Q4_1 source keeps its minimums (5 bits): bytes() of the packed shard.
  size_t bytes(int64_t rows, int64_t cols) const override {
    return size_t(kernels::panel_count(rows)) * size_t(kernels::int4_panel_bytes(cols));
  }
  std::unique_ptr<PackedMatrix> pack(const TensorView& src, Range rows, Range cols, Backend& be) const override {
    check_ranges(src, rows, cols);
    return std::make_unique<Int4Packed>(src, rows, cols, cpu_executor(be, "int4"));
  }
  // Bump the version when the panel layout or the quantizer's bytes change.
  std::string image_key() const override { return "int4/panels-v1"; }
  std::unique_ptr<PackedMatrix> adopt(const std::vector<HostBytes>& image, Range rows, Range cols, Backend& be,
                                      std::shared_ptr<const void> owner) const override {
    return std::make_unique<Int4Packed>(image, rows, cols, cpu_executor(be, "int4"), std::move(owner));
  }
  void set_option(const std::string& key, const std::string&) override {
    throw std::invalid_argument("weights plugin 'int4' has no option '" + key +
                                "' (its blocks are fixed at 32 inputs with f16 scales, GGUF Q4_0's layout)");
  }
};

void* create() { return static_cast<WeightFormat*>(new Int4Format()); }
const PluginInfo kInfo{kPluginAbiVersion, PluginKind::weights, "int4", "1.0.0",
                       "4-bit weights in blocks of 32 with f16 scales (GGUF Q4_0 and Q4_1 load directly), W4A8",
                       &create, nullptr};

}  // namespace
}  // namespace hpcinfer::plugins

HPCINFER_EXPORT_PLUGIN(hpcinfer::plugins::kInfo)
