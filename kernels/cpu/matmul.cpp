#include "kernels/cpu/matmul.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "kernels/cpu/convert.hpp"
#include "kernels/cpu/machine_probe.hpp"
#include "kernels/cpu/matmul_isa.hpp"

namespace hpcinfer::kernels {
namespace {

const MatmulKernels& kernels() {
  static const MatmulKernels k = [] {
    const std::string level = simd_level();
    if (level == "avx512") return matmul_kernels_avx512();
    if (level == "avx2") return matmul_kernels_avx2();
    return matmul_kernels_generic();
  }();
  return k;
}

}  // namespace

void matmul_f32(const float* x, int64_t n, const float* w, int64_t cols, float* y, int64_t ldy, int64_t row_begin,
                int64_t row_end) {
  kernels().f32(x, n, w, cols, y, ldy, row_begin, row_end);
}

void matmul_bf16(const float* x, int64_t n, const uint16_t* w, int64_t cols, float* y, int64_t ldy,
                 int64_t row_begin, int64_t row_end) {
  kernels().bf16(x, n, w, cols, y, ldy, row_begin, row_end);
}

void matmul_bf16dot_avx512(const float* x, int64_t n, const uint16_t* panels, int64_t cols, float* y, int64_t ldy,
                           int64_t r0, int64_t r1);  // matmul_bf16dot.cpp

bool bf16dot_supported() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return std::string(simd_level()) == "avx512" && __builtin_cpu_supports("avx512bf16");
  }();
  return yes;
}

void matmul_bf16dot(const float* x, int64_t n, const uint16_t* panels, int64_t cols, float* y, int64_t ldy,
                    int64_t row_begin, int64_t row_end) {
  matmul_bf16dot_avx512(x, n, panels, cols, y, ldy, row_begin, row_end);
}

}  // namespace hpcinfer::kernels
