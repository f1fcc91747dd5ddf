// The machine probes (kernels/cpu/machine_probe.hpp) against hand-written intrinsics loops, for every instruction
// set this CPU runs (what HPCINFER_SIMD may cap to): the FMA peak and the read bandwidth each within a factor of
// 1.35 of the reference measured beside it, interleaved, best of several. What this catches: the AVX2 build once
// spilled 512-bit generic vectors through the stack and reported 15.8 GFLOP/s on a core doing about 200 (12x), and
// a read bandwidth 30% low; a probe that reads too little or counts too much shows as a ratio far above 1.
// Timing ratios, not absolute speeds: both sides run in the same conditions.
#include <gtest/gtest.h>
#include <immintrin.h>
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cpu/machine_probe.hpp"
#include "support/test_support.hpp"

using namespace hpcinfer;

namespace {

using Clock = std::chrono::steady_clock;

// 12 accumulators of a*m + c per ISA, as a reference for fma_peak_gflops (flops = 2 x lanes x 12 x iters).
__attribute__((target("avx512f"), noinline)) float ref_fma_avx512(int64_t iters, float seed) {
  __m512 a[12];
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f * seed);
  for (int j = 0; j < 12; ++j) a[j] = _mm512_set1_ps(seed * float(j + 1));
  for (int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < 12; ++j) a[j] = _mm512_fmadd_ps(a[j], m, c);
  float s = 0;
  for (int j = 0; j < 12; ++j) s += _mm512_reduce_add_ps(a[j]);
  return s;
}
__attribute__((target("avx2,fma"), noinline)) float ref_fma_avx2(int64_t iters, float seed) {
  __m256 a[12];
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f * seed);
  for (int j = 0; j < 12; ++j) a[j] = _mm256_set1_ps(seed * float(j + 1));
  for (int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < 12; ++j) a[j] = _mm256_fmadd_ps(a[j], m, c);
  float out[8], s = 0;
  for (int j = 0; j < 12; ++j) {
    _mm256_storeu_ps(out, a[j]);
    s += out[j % 8];
  }
  return s;
}
__attribute__((noinline)) float ref_fma_sse2(int64_t iters, float seed) {  // the baseline: multiply, then add
  __m128 a[12];
  const __m128 m = _mm_set1_ps(0.999999f), c = _mm_set1_ps(1e-7f * seed);
  for (int j = 0; j < 12; ++j) a[j] = _mm_set1_ps(seed * float(j + 1));
  for (int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < 12; ++j) a[j] = _mm_add_ps(_mm_mul_ps(a[j], m), c);
  float out[4], s = 0;
  for (int j = 0; j < 12; ++j) {
    _mm_storeu_ps(out, a[j]);
    s += out[j % 4];
  }
  return s;
}

// Streaming sums with 8 accumulators per ISA, as a reference for read_bandwidth_gbs.
__attribute__((target("avx512f"), noinline)) float ref_sum_avx512(const float* p, size_t n) {
  __m512 a[8];
  for (auto& v : a) v = _mm512_setzero_ps();
  for (size_t i = 0; i + 128 <= n; i += 128)
    for (int j = 0; j < 8; ++j) a[j] = _mm512_add_ps(a[j], _mm512_load_ps(p + i + 16 * j));
  for (int j = 1; j < 8; ++j) a[0] = _mm512_add_ps(a[0], a[j]);
  return _mm512_reduce_add_ps(a[0]);
}
__attribute__((target("avx2"), noinline)) float ref_sum_avx2(const float* p, size_t n) {
  __m256 a[8];
  for (auto& v : a) v = _mm256_setzero_ps();
  for (size_t i = 0; i + 64 <= n; i += 64)
    for (int j = 0; j < 8; ++j) a[j] = _mm256_add_ps(a[j], _mm256_load_ps(p + i + 8 * j));
  for (int j = 1; j < 8; ++j) a[0] = _mm256_add_ps(a[0], a[j]);
  float out[8];
  _mm256_storeu_ps(out, a[0]);
  return out[0] + out[7];
}
__attribute__((noinline)) float ref_sum_sse2(const float* p, size_t n) {
  __m128 a[8];
  for (auto& v : a) v = _mm_setzero_ps();
  for (size_t i = 0; i + 32 <= n; i += 32)
    for (int j = 0; j < 8; ++j) a[j] = _mm_add_ps(a[j], _mm_load_ps(p + i + 4 * j));
  for (int j = 1; j < 8; ++j) a[0] = _mm_add_ps(a[0], a[j]);
  float out[4];
  _mm_storeu_ps(out, a[0]);
  return out[0] + out[3];
}

struct Reference {
  int lanes;
  float (*fma)(int64_t, float);
  float (*sum)(const float*, size_t);
};
Reference reference_for(const std::string& isa) {
  if (isa == "avx512") return {16, &ref_fma_avx512, &ref_sum_avx512};
  if (isa == "avx2") return {8, &ref_fma_avx2, &ref_sum_avx2};
  return {4, &ref_fma_sse2, &ref_sum_sse2};
}

// Best units/s/1e9 of body over reps runs on `threads` OpenMP threads.
double best_rate(int threads, int reps, double units, const std::function<float(int)>& body) {
  double best = 0;
  volatile float sink = 0;
  for (int r = 0; r < reps; ++r) {
    float total = 0;
    const auto t0 = Clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : total)
    total += body(omp_get_thread_num());
    best = std::max(best, units / std::chrono::duration<double>(Clock::now() - t0).count() / 1e9);
    sink = sink + total;
  }
  return best;
}

constexpr double kFactor = 1.35;


}  // namespace

TEST(MachineProbe, FmaPeakOfEveryIsaMatchesAnIntrinsicsLoop) {
  HPCINFER_SKIP_MEASUREMENT_WHEN_SANITIZED("rates of instrumented loops");
  const int threads = 1;  // the ISA's rate, not the thread scaling (and ctest -j2 runs another test beside this one)
  const int64_t iters = 200000;
  for (const std::string& isa : kernels::simd_levels_here()) {
    const Reference ref = reference_for(isa);
    double probe = 0, want = 0;
    for (int round = 0; round < 5; ++round) {  // interleaved: a disturbance hits both sides alike
      probe = std::max(probe, kernels::fma_peak_gflops(threads, 5, iters, isa));
      want = std::max(want, best_rate(threads, 5, 2.0 * ref.lanes * 12 * double(iters) * threads,
                                      [&](int t) { return ref.fma(iters, 1.0f + float(t)); }));
    }
    EXPECT_LE(probe, want * kFactor) << isa << ": the probe claims more than the reference loop runs";
    EXPECT_GE(probe, want / kFactor) << isa << ": the probe runs slower than a plain intrinsics loop (spills?)";
    std::printf("%s: fma probe %.1f GFLOP/s, reference %.1f (%d threads)\n", isa.c_str(), probe, want, threads);
  }
}

TEST(MachineProbe, ReadBandwidthOfEveryIsaMatchesAnIntrinsicsLoop) {
  HPCINFER_SKIP_MEASUREMENT_WHEN_SANITIZED("rates of instrumented loops");
  const int threads = std::min(2, omp_get_max_threads());
  const size_t bytes = size_t(256) << 20, floats = bytes / 4;  // beyond the caches of these machines
  float* buf = static_cast<float*>(std::aligned_alloc(size_t(2) << 20, bytes));
  ASSERT_NE(buf, nullptr);
  madvise(buf, bytes, MADV_HUGEPAGE);  // as the probe's buffer and the packed weights are
  const size_t chunk = kernels::read_chunk_floats(floats, threads);
#pragma omp parallel num_threads(threads)
  {
    const size_t lo = std::min(floats, chunk * size_t(omp_get_thread_num())), hi = std::min(floats, lo + chunk);
    for (size_t i = lo; i < hi; ++i) buf[i] = float(i & 7);
  }
  for (const std::string& isa : kernels::simd_levels_here()) {
    const Reference ref = reference_for(isa);
    double probe = 0, want = 0;
    for (int round = 0; round < 3; ++round) {
      probe = std::max(probe, kernels::read_rate_gbs(buf, floats, threads, 3, isa));  // the same buffer
      want = std::max(want, best_rate(threads, 3, double(bytes), [&](int t) {
                        const size_t lo = std::min(floats, chunk * size_t(t)), hi = std::min(floats, lo + chunk);
                        return ref.sum(buf + lo, hi - lo);
                      }));
    }
    EXPECT_LE(probe, want * kFactor) << isa << ": the probe claims more bandwidth than the reference loop reads";
    EXPECT_GE(probe, want / kFactor) << isa << ": the probe reads slower than a plain intrinsics loop";
    std::printf("%s: read probe %.1f GB/s, reference %.1f (%d threads)\n", isa.c_str(), probe, want, threads);
  }
  std::free(buf);
}

TEST(MachineProbe, AnIsaThisCpuDoesNotRunIsAnErrorAndCapsAreHonoured) {
  EXPECT_THROW(kernels::fma_peak_gflops(1, 1, 10, "sse9"), std::invalid_argument);
  // HPCINFER_SIMD caps what bench-kernels reports and probes.
  for (const std::string& isa : kernels::simd_levels_here()) {
    auto r = test::run_command("HPCINFER_SIMD=" + isa + " " + test::bin() + " bench-kernels --rows 16 --cols 64 --reps 2 --json 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("\"simd\":\"" + isa + "\""), std::string::npos) << r.output;
  }
}
