// bf16 <-> f32 conversion of device buffers on a stream (bf16_convert.cu), for allreduce_sum_bf16.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace hpcinfer::nccl_comm {

// dst[i] = f32(src[i]); src: [n] bf16 bit patterns, dst: [n] f32, both device memory.
cudaError_t bf16_to_f32_async(const uint16_t* src, float* dst, size_t n, cudaStream_t stream);
// dst[i] = bf16(src[i]) rounded to nearest even; src: [n] f32, dst: [n] bf16, both device memory.
cudaError_t f32_to_bf16_async(const float* src, uint16_t* dst, size_t n, cudaStream_t stream);

}  // namespace hpcinfer::nccl_comm
