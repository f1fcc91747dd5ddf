// The matmul kernels compiled for the baseline target (flags set in kernels/CMakeLists.txt).
#include "kernels/cpu/matmul_tiles.hpp"

hpcinfer::kernels::MatmulKernels hpcinfer::kernels::matmul_kernels_generic() { return kernel_table(); }
