// Weights on a device backend: a shard laid out on the host in the device matmul table's row layouts
// (interfaces/hpcinfer/device_matmul.hpp: rows `ld` apart, ld a multiple of 16, zeros past cols), copied to the
// device in chunks, and multiplied by the backend's own kernels through that table. Shared by weights_f32,
// weights_bf16 and weights_int8 (header-only: plugins link nothing of the core and no device library).
#pragma once

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "hpcinfer/backend.hpp"
#include "hpcinfer/device_matmul.hpp"
#include "hpcinfer/weight_format.hpp"
#include "kernels/cpu/convert.hpp"
#include "kernels/cpu/matmul.hpp"
#include "plugins/common/shard_storage.hpp"

namespace hpcinfer::plugins {

// The backend's matmul table, or an error naming the plugin when the backend has none.
inline const DeviceMatmulOps& device_ops(Backend& be, const std::string& plugin) {
  const auto* ops = static_cast<const DeviceMatmulOps*>(be.device_context());
  if (!ops || ops->version != DeviceMatmulOps::kVersion || !ops->matmul || !ops->gather_rows)
    throw std::invalid_argument("weights plugin '" + plugin + "': backend '" + be.name() +
                                "' offers no device matmul table (version " +
                                std::to_string(DeviceMatmulOps::kVersion) + ")");
  return *ops;
}

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Device-resident matrix in the table's layout. Owns its buffers (freed on the backend).
class DevicePacked final : public PackedMatrix {
 public:
  DevicePacked(Backend& be, const DeviceMatmulOps& ops, DeviceMatrix m, size_t data_bytes, size_t scale_bytes)
      : be_(be), ops_(ops), m_(m), data_bytes_(data_bytes), scale_bytes_(scale_bytes) {
    data_ = be_.alloc(data_bytes);
    if (scale_bytes) scales_ = static_cast<float*>(be_.alloc(scale_bytes));
    m_.data = data_;
    m_.scales = scales_;
  }
  ~DevicePacked() override {
    be_.free(scales_);
    be_.free(data_);
  }
  void* data() { return data_; }
  float* scales() { return scales_; }
  const DeviceMatrix& matrix() const { return m_; }

  int64_t rows() const override { return m_.rows; }
  int64_t cols() const override { return m_.cols; }
  size_t bytes() const override { return data_bytes_ + scale_bytes_; }
  void matmul(const float* x, int64_t n, float* y) const override { ops_.matmul(ops_.self, m_, x, n, y); }
  void gather_rows(const int* ids, int64_t n, int64_t offset, float* out) const override {
    ops_.gather_rows(ops_.self, m_, ids, n, offset, out);
  }
  void dequantize_row(int64_t r, float* out) const override {
    const size_t elem = m_.type == DeviceWeights::f32 ? 4 : m_.type == DeviceWeights::bf16 ? 2 : 1;
    std::vector<uint8_t> row(size_t(m_.ld) * elem);
    be_.copy_to_host(row.data(), static_cast<const uint8_t*>(data_) + size_t(r) * row.size(), row.size());
    std::vector<float> sc;
    if (m_.type == DeviceWeights::int8) {
      sc.resize(size_t(m_.ld / m_.group));
      be_.copy_to_host(sc.data(), scales_ + size_t(r) * sc.size(), sc.size() * sizeof(float));
    }
    for (int64_t c = 0; c < m_.cols; ++c) {
      if (m_.type == DeviceWeights::f32) std::memcpy(&out[c], row.data() + c * 4, 4);
      else if (m_.type == DeviceWeights::bf16) {
        uint16_t b;
        std::memcpy(&b, row.data() + c * 2, 2);
        out[c] = kernels::bf16_to_f32(b);
      } else {
        out[c] = float(int8_t(row[size_t(c)])) * sc[size_t(c / m_.group)];
      }
    }
  }

 private:
  Backend& be_;
  const DeviceMatmulOps& ops_;
  DeviceMatrix m_;
  size_t data_bytes_, scale_bytes_;
  void* data_ = nullptr;
  float* scales_ = nullptr;
};

// Fills a device matrix row block by row block: fill(r, row_bytes_out, row_scales_out) writes row r of the shard in
// the layout (zeros past cols already there). Host staging of about 64 MiB at a time.
template <typename FillRow>
void upload_rows(Backend& be, DevicePacked& p, size_t row_bytes, size_t row_scale_floats, const FillRow& fill) {
  const int64_t rows = p.rows();
  const int64_t chunk = std::max<int64_t>(1, int64_t((size_t(64) << 20) / std::max<size_t>(row_bytes, 1)));
  std::vector<uint8_t> host(size_t(std::min(chunk, rows)) * row_bytes);
  std::vector<float> host_scales(size_t(std::min(chunk, rows)) * row_scale_floats);
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t m = std::min(chunk, rows - r0);
    std::fill(host.begin(), host.end(), uint8_t(0));
    std::fill(host_scales.begin(), host_scales.end(), 0.0f);
    for (int64_t r = 0; r < m; ++r)
      fill(r0 + r, host.data() + size_t(r) * row_bytes, host_scales.data() + size_t(r) * row_scale_floats);
    be.copy_to_device(static_cast<uint8_t*>(p.data()) + size_t(r0) * row_bytes, host.data(), size_t(m) * row_bytes);
    if (row_scale_floats)
      be.copy_to_device(p.scales() + size_t(r0) * row_scale_floats, host_scales.data(),
                        size_t(m) * row_scale_floats * sizeof(float));
  }
}

// f32 or bf16 shard of src on a device backend.
inline std::unique_ptr<PackedMatrix> pack_dense_on_device(const TensorView& src, Range rows, Range cols, Backend& be,
                                                          const std::string& plugin, bool bf16) {
  check_ranges(src, rows, cols);
  const DeviceMatmulOps& ops = device_ops(be, plugin);
  DeviceMatrix m;
  m.type = bf16 ? DeviceWeights::bf16 : DeviceWeights::f32;
  m.rows = rows.size();
  m.cols = cols.size();
  m.ld = round_up(m.cols, 16);
  const size_t elem = bf16 ? 2 : 4, row_bytes = size_t(m.ld) * elem;
  auto p = std::make_unique<DevicePacked>(be, ops, m, size_t(m.rows) * row_bytes, 0);
  std::vector<float> tmp(size_t(m.cols));
  upload_rows(be, *p, row_bytes, 0, [&](int64_t r, uint8_t* out, float*) {
    const void* row = src.row_ptr(rows.begin + r);
    if (bf16 && src.dtype == DType::bf16) {  // exact copy
      std::memcpy(out, static_cast<const uint16_t*>(row) + cols.begin, size_t(m.cols) * 2);
      return;
    }
    kernels::dequantize_row(src.dtype, row, cols.begin, m.cols, tmp.data());
    if (!bf16) {
      std::memcpy(out, tmp.data(), size_t(m.cols) * 4);
      return;
    }
    for (int64_t c = 0; c < m.cols; ++c) {
      const uint16_t b = kernels::f32_to_bf16(tmp[size_t(c)]);
      std::memcpy(out + c * 2, &b, 2);
    }
  });
  return p;
}

// Bytes of a dense shard on a device (the planner's figure for device: cuda).
inline size_t dense_device_bytes(int64_t rows, int64_t cols, bool bf16) {
  return size_t(rows) * size_t(round_up(cols, 16)) * (bf16 ? 2 : 4);
}

}  // namespace hpcinfer::plugins
