#include <cuda_bf16.h>

#include "bf16_convert.hpp"

namespace hpcinfer::nccl_comm {
namespace {

__global__ void widen(const __nv_bfloat16* src, float* dst, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = __bfloat162float(src[i]);
}

__global__ void narrow(const float* src, __nv_bfloat16* dst, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = __float2bfloat16_rn(src[i]);
}

unsigned blocks_for(size_t n) {
  size_t b = (n + 255) / 256;
  return unsigned(b < 4096 ? (b == 0 ? 1 : b) : 4096);  // grid-stride loop covers the rest
}

}  // namespace

cudaError_t bf16_to_f32_async(const uint16_t* src, float* dst, size_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  widen<<<blocks_for(n), 256, 0, stream>>>(reinterpret_cast<const __nv_bfloat16*>(src), dst, n);
  return cudaGetLastError();
}

cudaError_t f32_to_bf16_async(const float* src, uint16_t* dst, size_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  narrow<<<blocks_for(n), 256, 0, stream>>>(src, reinterpret_cast<__nv_bfloat16*>(dst), n);
  return cudaGetLastError();
}

}  // namespace hpcinfer::nccl_comm
