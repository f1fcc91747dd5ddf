// The matmul kernels compiled for x86-64-v4 (flags set in kernels/CMakeLists.txt).
#include "kernels/cpu/matmul_bf16_panels.hpp"

hpcinfer::kernels::MatmulKernels hpcinfer::kernels::matmul_kernels_avx512() {
  return {&matmul_f32_entry, &matmul_bf16_entry};
}
