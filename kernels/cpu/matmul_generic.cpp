// The matmul kernels compiled for the baseline target (flags set in kernels/CMakeLists.txt).
#include "kernels/cpu/matmul_bf16_panels.hpp"

hpcinfer::kernels::MatmulKernels hpcinfer::kernels::matmul_kernels_generic() {
  return {&matmul_f32_entry, &matmul_bf16_entry};
}
