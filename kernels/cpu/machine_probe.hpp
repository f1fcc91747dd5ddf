// Hardware limits measured on the machine itself, for rooflines: what `hpcinfer bench` compares its kernels against.
// Each probe runs on `threads` OpenMP threads and returns the best of `reps` repetitions (the least disturbed one).
#pragma once

#include <cstddef>
#include <cstdint>

namespace hpcinfer::kernels {

// STREAM-style copy a[i] = b[i] over two buffers of `bytes` each; counts bytes read + bytes written (STREAM's
// convention, so write-allocate traffic is not counted). GB/s = 1e9 bytes/s.
double copy_bandwidth_gbs(int threads, size_t bytes, int reps);
// Read-only streaming sum over one buffer of `bytes`: what a weight-streaming GEMV can hope for. GB/s.
double read_bandwidth_gbs(int threads, size_t bytes, int reps);
// Peak f32 fused multiply-add rate, registers only (widest vectors this CPU runs). GFLOP/s, 2 flops per FMA.
// One repetition is iters x 12 vector FMAs per thread (2e6: about 7 ms at 3.7 GHz); the best repetition counts.
double fma_peak_gflops(int threads, int reps, int64_t iters = 2000000);
// The instruction set the matmul kernels dispatch to: "avx512" (x86-64-v4) | "avx2" (x86-64-v3) | "generic".
// The environment variable HPCINFER_SIMD=avx2|generic caps it (for A/B runs and tests of the narrower paths).
const char* simd_level();

}  // namespace hpcinfer::kernels
