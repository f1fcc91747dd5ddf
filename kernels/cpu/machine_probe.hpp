// Hardware limits measured on the machine itself, for rooflines: what `hpcinfer bench` compares its kernels against.
// Each probe runs on `threads` OpenMP threads and returns the best of `reps` repetitions (the least disturbed one).
// The read and FMA probes run the loops of one instruction set (`isa`: "avx512" | "avx2" | "generic"; empty = the
// one the kernels use, simd_level()), each compiled for that ISA with vectors of its native width
// (kernels/cpu/probe_loops.hpp). tests/test_machine_probe.cpp holds them to hand-written intrinsics loops.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hpcinfer::kernels {

// STREAM-style copy a[i] = b[i] over two buffers of `bytes` each (glibc's memcpy, whose ISA glibc picks); counts
// bytes read + bytes written (STREAM's convention, so write-allocate traffic is not counted). GB/s = 1e9 bytes/s.
double copy_bandwidth_gbs(int threads, size_t bytes, int reps);
// Read-only streaming sum over one buffer of `bytes`: what a weight-streaming GEMV can hope for. GB/s.
double read_bandwidth_gbs(int threads, size_t bytes, int reps, const std::string& isa = "");
// The read probe over a buffer the caller holds (floats of it, thread t reading the t-th read_chunk_floats range):
// where the pages lie moves the bandwidth on these VMs (seen: 32 and 55 GB/s for fresh buffers minutes apart), so
// a comparison of two loops reads the same buffer.
double read_rate_gbs(const float* p, size_t floats, int threads, int reps, const std::string& isa = "");
size_t read_chunk_floats(size_t floats, int threads);
// Peak f32 multiply-add rate, registers only. GFLOP/s, 2 flops per lane per multiply-add.
// One repetition is iters x 12 vector FMAs per thread (2e6: about 7 ms at 3.7 GHz); the best repetition counts.
double fma_peak_gflops(int threads, int reps, int64_t iters = 2000000, const std::string& isa = "");
// The instruction set the matmul kernels dispatch to: "avx512" (x86-64-v4) | "avx2" (x86-64-v3) | "generic".
// The environment variable HPCINFER_SIMD=avx2|generic caps it (for A/B runs and tests of the narrower paths).
const char* simd_level();
// Every instruction set this CPU runs, narrowest first ("generic" always; what HPCINFER_SIMD may cap to).
std::vector<std::string> simd_levels_here();

// One ISA's probe loops (probe_loops.hpp): sum(p, n) of n floats; fma(iters, seed) = iters x 12 multiply-adds on
// vectors of `lanes` floats.
struct ProbeLoops {
  float (*sum)(const float* p, size_t n);
  float (*fma)(int64_t iters, float seed);
  int lanes;
};
ProbeLoops probe_loops_avx512();
ProbeLoops probe_loops_avx2();
ProbeLoops probe_loops_generic();

}  // namespace hpcinfer::kernels
