// The matmul kernels compiled for x86-64-v3 (flags set in kernels/CMakeLists.txt).
#include "kernels/cpu/matmul_bf16_panels.hpp"

hpcinfer::kernels::MatmulKernels hpcinfer::kernels::matmul_kernels_avx2() {
  return {&matmul_f32_entry, &matmul_bf16_entry};
}
