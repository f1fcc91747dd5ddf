// One table of f32/bf16 matmul kernels per instruction set; matmul.cpp dispatches on the CPU's features at first
// use. (int8 has its own dispatch: kernels/cpu/matmul_int8.cpp.)
#pragma once

#include "kernels/cpu/matmul.hpp"

namespace hpcinfer::kernels {

struct MatmulKernels {
  void (*f32)(const float* x, int64_t n, const float* w, int64_t cols, float* y, int64_t ldy, int64_t r0, int64_t r1);
  void (*bf16)(const float* x, int64_t n, const uint16_t* w, int64_t cols, float* y, int64_t ldy, int64_t r0,
               int64_t r1);
};

MatmulKernels matmul_kernels_avx512();   // x86-64-v4 (AVX-512 F/BW/DQ/VL)
MatmulKernels matmul_kernels_avx2();     // x86-64-v3 (AVX2, FMA, F16C)
MatmulKernels matmul_kernels_generic();  // baseline x86-64 or any other target

}  // namespace hpcinfer::kernels
