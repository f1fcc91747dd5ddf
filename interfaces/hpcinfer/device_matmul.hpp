// What a device backend offers the weight formats that pack for it: its matmul and embedding kernels behind a plain
// table, so a weights plugin packs for a device without linking the device's libraries itself (the cuda backend
// plugin owns CUDA, cuBLASLt and the kernels; weights_f32 / _bf16 / _int8 only lay out bytes and call these).
// Backend::device_context() of a device backend returns a `DeviceMatmulOps*` (check `version`).
//
// Layouts (all in the backend's memory, rows `ld` elements apart, ld >= cols, ld a multiple of 16):
//   f32   W[rows, ld] floats
//   bf16  W[rows, ld] bf16 bit patterns
//   int8  Q[rows, ld] signed bytes and S[rows, ld / group] f32 scales: W[r, c] = Q[r, c] * S[r, c / group]
//         (group a multiple of 16; per-channel scales are group = ld); Q and S are zero past cols.
// Every call: y[n, rows] = x[n, cols] W^T with f32 x and y (x, y do not alias), accumulation in f32; or the
// embedding lookup out[i, cols] = row (ids[i] - row_offset) of W as f32, zeros when outside [0, rows).
// Calls are ordered on the backend's stream like its other ops; errors throw std::runtime_error naming the call.
#pragma once

#include <cstdint>

namespace hpcinfer {

enum class DeviceWeights : uint32_t { f32 = 0, bf16 = 1, int8 = 2 };

struct DeviceMatrix {
  DeviceWeights type = DeviceWeights::f32;
  const void* data = nullptr;     // W or Q
  const float* scales = nullptr;  // int8 only: [rows, ld / group]
  int64_t rows = 0, cols = 0, ld = 0, group = 0;
};

struct DeviceMatmulOps {
  static constexpr uint32_t kVersion = 1;
  uint32_t version = kVersion;
  void* self = nullptr;  // the backend; first argument of every call
  void (*matmul)(void* self, const DeviceMatrix& w, const float* x, int64_t n, float* y) = nullptr;
  void (*gather_rows)(void* self, const DeviceMatrix& w, const int* ids, int64_t n, int64_t row_offset,
                      float* out) = nullptr;
};

}  // namespace hpcinfer
