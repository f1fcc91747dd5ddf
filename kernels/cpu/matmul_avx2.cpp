// The matmul kernels compiled for x86-64-v3 (flags set in kernels/CMakeLists.txt).
#include "kernels/cpu/matmul_tiles.hpp"

hpcinfer::kernels::MatmulKernels hpcinfer::kernels::matmul_kernels_avx2() { return kernel_table(); }
