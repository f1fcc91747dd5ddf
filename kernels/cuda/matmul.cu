// Decode GEMVs (weights streamed once, dequantized in registers), the conversions the prefill GEMM needs, and the
// embedding lookup, for the device matmul table (interfaces/hpcinfer/device_matmul.hpp). The prefill GEMM itself is
// cuBLASLt's (plugins/backend_cuda/cuda_matmul.cpp).
#include <cuda_bf16.h>

#include "kernels/cuda/ops.hpp"

namespace hpcinfer::cuda {
namespace {

constexpr int kWarps = 8;  // rows per block: one warp per weight row

__device__ __forceinline__ float bf16_bits_to_f32(uint16_t b) { return __uint_as_float(uint32_t(b) << 16); }
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Loads 8 weights starting at column c (c a multiple of 8, the row padded to ld, a multiple of 16) as f32.
struct F32Row {
  const float* w;
  __device__ void load8(int64_t c, float* out) const {
    const float4 a = *reinterpret_cast<const float4*>(w + c), b = *reinterpret_cast<const float4*>(w + c + 4);
    out[0] = a.x; out[1] = a.y; out[2] = a.z; out[3] = a.w;
    out[4] = b.x; out[5] = b.y; out[6] = b.z; out[7] = b.w;
  }
};
struct Bf16Row {
  const uint16_t* w;
  __device__ void load8(int64_t c, float* out) const {
    const uint4 v = *reinterpret_cast<const uint4*>(w + c);
    const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      out[2 * k] = __uint_as_float(u[k] << 16);
      out[2 * k + 1] = __uint_as_float(u[k] & 0xffff0000u);
    }
  }
};
struct Int8Row {
  const int8_t* q;
  const float* s;  // this row's scales
  int64_t group;
  __device__ void load8(int64_t c, float* out) const {
    const uint2 v = *reinterpret_cast<const uint2*>(q + c);
    const float sc = s[c / group];
    const uint32_t u[2] = {v.x, v.y};
#pragma unroll
    for (int k = 0; k < 8; ++k) out[k] = float(int8_t((u[k / 4] >> (8 * (k % 4))) & 0xffu)) * sc;
  }
};

// y[i, r] = sum_c x[i, c] W[r, c] for NT tokens: each lane takes 8 columns at a time, 256 columns a warp step.
template <int NT, typename Row>
__device__ void gemv_row(const Row& row, int64_t cols, const float* x, int64_t r, int64_t rows, float* y) {
  const int lane = threadIdx.x & 31;
  float acc[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) acc[t] = 0.0f;
  const int64_t full = cols / 8 * 8;
  for (int64_t c = int64_t(lane) * 8; c < full; c += 256) {
    float w[8];
    row.load8(c, w);
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      const float* xt = x + t * cols + c;
#pragma unroll
      for (int k = 0; k < 8; ++k) acc[t] += w[k] * xt[k];
    }
  }
  if (full < cols && lane == 0) {  // the last cols % 8 columns (the padding is zero, the input is not there)
    float w[8];
    row.load8(full, w);
    for (int t = 0; t < NT; ++t)
      for (int64_t c = full; c < cols; ++c) acc[t] += w[c - full] * x[t * cols + c];
  }
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    const float v = warp_sum(acc[t]);
    if (lane == 0) y[t * rows + r] = v;
  }
}

template <int NT>
__global__ void k_gemv_f32(const float* w, int64_t rows, int64_t cols, int64_t ld, const float* x, float* y) {
  const int64_t r = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (r < rows) gemv_row<NT>(F32Row{w + r * ld}, cols, x, r, rows, y);
}
template <int NT>
__global__ void k_gemv_bf16(const uint16_t* w, int64_t rows, int64_t cols, int64_t ld, const float* x, float* y) {
  const int64_t r = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (r < rows) gemv_row<NT>(Bf16Row{w + r * ld}, cols, x, r, rows, y);
}
template <int NT>
__global__ void k_gemv_int8(const int8_t* q, const float* s, int64_t rows, int64_t cols, int64_t ld, int64_t group,
                            const float* x, float* y) {
  const int64_t r = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (r < rows) gemv_row<NT>(Int8Row{q + r * ld, s + r * (ld / group), group}, cols, x, r, rows, y);
}

// Runs the NT-token kernel for n tokens in chunks of at most kGemvMaxTokens.
template <template <int> class Launch, typename... A>
void by_tokens(int64_t n, int64_t cols, int64_t rows, const float* x, float* y, A... a) {
  for (int64_t t0 = 0; t0 < n; t0 += kGemvMaxTokens) {
    const int64_t nt = n - t0 < kGemvMaxTokens ? n - t0 : kGemvMaxTokens;
    const float* xt = x + t0 * cols;
    float* yt = y + t0 * rows;
    switch (nt) {
      case 1: Launch<1>::run(xt, yt, a...); break;
      case 2: Launch<2>::run(xt, yt, a...); break;
      case 3: Launch<3>::run(xt, yt, a...); break;
      case 4: Launch<4>::run(xt, yt, a...); break;
      case 5: Launch<5>::run(xt, yt, a...); break;
      case 6: Launch<6>::run(xt, yt, a...); break;
      case 7: Launch<7>::run(xt, yt, a...); break;
      default: Launch<8>::run(xt, yt, a...); break;
    }
  }
}
inline unsigned row_blocks(int64_t rows) { return unsigned((rows + kWarps - 1) / kWarps); }
template <int NT>
struct LaunchF32 {
  static void run(const float* x, float* y, const float* w, int64_t rows, int64_t cols, int64_t ld, cudaStream_t s) {
    k_gemv_f32<NT><<<row_blocks(rows), 32 * kWarps, 0, s>>>(w, rows, cols, ld, x, y);
  }
};
template <int NT>
struct LaunchBf16 {
  static void run(const float* x, float* y, const uint16_t* w, int64_t rows, int64_t cols, int64_t ld,
                  cudaStream_t s) {
    k_gemv_bf16<NT><<<row_blocks(rows), 32 * kWarps, 0, s>>>(w, rows, cols, ld, x, y);
  }
};
template <int NT>
struct LaunchInt8 {
  static void run(const float* x, float* y, const int8_t* q, const float* sc, int64_t rows, int64_t cols, int64_t ld,
                  int64_t group, cudaStream_t s) {
    k_gemv_int8<NT><<<row_blocks(rows), 32 * kWarps, 0, s>>>(q, sc, rows, cols, ld, group, x, y);
  }
};

__global__ void k_f32_to_bf16(const float* x, int64_t rows, int64_t cols, int64_t ld, uint16_t* out) {
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < rows * ld; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = t / ld, c = t % ld;
    out[t] = c < cols ? __bfloat16_as_ushort(__float2bfloat16_rn(x[r * cols + c])) : uint16_t(0);
  }
}
__global__ void k_int8_to_bf16(const int8_t* q, const float* s, int64_t rows, int64_t ld, int64_t group,
                               uint16_t* out) {
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < rows * ld; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = t / ld, c = t % ld;
    out[t] = __bfloat16_as_ushort(__float2bfloat16_rn(float(q[t]) * s[r * (ld / group) + c / group]));
  }
}
__global__ void k_gather(int type, const void* w, const float* s, int64_t rows, int64_t cols, int64_t ld,
                         int64_t group, const int* ids, int64_t n, int64_t offset, float* out) {
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < n * cols; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = t / cols, c = t % cols, r = int64_t(ids[i]) - offset;
    float v = 0.0f;
    if (r >= 0 && r < rows) {
      if (type == 0) v = static_cast<const float*>(w)[r * ld + c];
      else if (type == 1) v = bf16_bits_to_f32(static_cast<const uint16_t*>(w)[r * ld + c]);
      else v = float(static_cast<const int8_t*>(w)[r * ld + c]) * s[r * (ld / group) + c / group];
    }
    out[t] = v;
  }
}
inline unsigned grid_for(int64_t count) {
  const int64_t b = (count + 255) / 256;
  return unsigned(b < 1 ? 1 : (b > 65535 * 16 ? 65535 * 16 : b));
}

}  // namespace

void gemv_f32(const float* w, int64_t rows, int64_t cols, int64_t ld, const float* x, int64_t n, float* y,
              cudaStream_t s) {
  by_tokens<LaunchF32>(n, cols, rows, x, y, w, rows, cols, ld, s);
}
void gemv_bf16(const uint16_t* w, int64_t rows, int64_t cols, int64_t ld, const float* x, int64_t n, float* y,
               cudaStream_t s) {
  by_tokens<LaunchBf16>(n, cols, rows, x, y, w, rows, cols, ld, s);
}
void gemv_int8(const int8_t* q, const float* scales, int64_t rows, int64_t cols, int64_t ld, int64_t group,
               const float* x, int64_t n, float* y, cudaStream_t s) {
  by_tokens<LaunchInt8>(n, cols, rows, x, y, q, scales, rows, cols, ld, group, s);
}
void f32_to_bf16(const float* x, int64_t rows, int64_t cols, int64_t ld, uint16_t* out, cudaStream_t s) {
  if (rows * ld > 0) k_f32_to_bf16<<<grid_for(rows * ld), 256, 0, s>>>(x, rows, cols, ld, out);
}
void int8_to_bf16(const int8_t* q, const float* scales, int64_t rows, int64_t ld, int64_t group, uint16_t* out,
                  cudaStream_t s) {
  if (rows * ld > 0) k_int8_to_bf16<<<grid_for(rows * ld), 256, 0, s>>>(q, scales, rows, ld, group, out);
}
void gather_rows(int type, const void* w, const float* scales, int64_t rows, int64_t cols, int64_t ld, int64_t group,
                 const int* ids, int64_t n, int64_t offset, float* out, cudaStream_t s) {
  if (n * cols > 0) k_gather<<<grid_for(n * cols), 256, 0, s>>>(type, w, scales, rows, cols, ld, group, ids, n, offset, out);
}

}  // namespace hpcinfer::cuda
