// The machine probes' inner loops (kernels/cpu/machine_probe.cpp), compiled once per instruction set like the matmul
// kernels (probe_avx512.cpp with -march=x86-64-v4, probe_avx2.cpp with -march=x86-64-v3, probe_generic.cpp with the
// baseline) and picked by the same simd_level(): vectors of the ISA's native width only. Why: GCC lowers a vector
// wider than the target's registers through the stack, and the 512-bit generic vectors these probes once used made
// the AVX2 build measure 15.8 GFLOP/s of FMA where the core does about 200, and a read bandwidth 30% low.
// Internal linkage on purpose (anonymous namespace): each ISA's translation unit keeps its own copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/machine_probe.hpp"

namespace hpcinfer::kernels {
namespace {

#if defined(__AVX512F__)
constexpr int kProbeLanes = 16;
#elif defined(__AVX2__)
constexpr int kProbeLanes = 8;
#else
constexpr int kProbeLanes = 4;
#endif
typedef float probe_vf __attribute__((vector_size(kProbeLanes * 4)));

// Sum of p[0, n): 8 independent accumulators (2 loads per cycle against a 3-4 cycle add latency), so the loop is
// bound by the loads, not the adds.
float probe_sum(const float* p, size_t n) {
  constexpr size_t kStep = 8 * kProbeLanes;
  probe_vf a[8] = {};
  size_t i = 0;
  for (; i + kStep <= n; i += kStep)
    for (int j = 0; j < 8; ++j) {
      probe_vf x;
      std::memcpy(&x, p + i + size_t(j) * kProbeLanes, sizeof x);
      a[j] += x;
    }
  probe_vf t = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
  float s = 0;
  for (int k = 0; k < kProbeLanes; ++k) s += t[k];
  for (; i < n; ++i) s += p[i];
  return s;
}

// iters x 12 vector multiply-adds on 12 independent accumulators (hides a 4-cycle FMA latency at 2-3 per cycle;
// 12 + 2 constants fit AVX2's 16 registers). x86-64-v3/v4 contract a * m + c into one FMA; the baseline issues a
// multiply and an add (still 2 flops per lane).
float probe_fma(int64_t iters, float seed) {
  probe_vf a[12];
  const probe_vf m = probe_vf{} + 0.999999f, c = probe_vf{} + 1e-7f * seed;
  for (int j = 0; j < 12; ++j) a[j] = probe_vf{} + seed * float(j + 1);
  for (int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < 12; ++j) a[j] = a[j] * m + c;
  float s = 0;
  for (int j = 0; j < 12; ++j) s += a[j][j % kProbeLanes];
  return s;
}

ProbeLoops make_probe_loops() { return {&probe_sum, &probe_fma, kProbeLanes}; }

}  // namespace
}  // namespace hpcinfer::kernels
