#include "kernels/cpu/machine_probe.hpp"

#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace hpcinfer::kernels {
namespace {

using Clock = std::chrono::steady_clock;
typedef float v16f __attribute__((vector_size(64)));

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// 2 MiB-aligned buffer on transparent huge pages, as the packed weights are (plugins/common/shard_storage.hpp),
// touched by the threads that will use it (first-touch placement).
struct Buffer {
  char* p = nullptr;
  size_t n = 0;
  explicit Buffer(size_t bytes) : n(bytes) {
    const size_t align = size_t(2) << 20, rounded = (bytes + align - 1) / align * align;
    p = static_cast<char*>(std::aligned_alloc(align, rounded));
    if (p) madvise(p, rounded, MADV_HUGEPAGE);
  }
  ~Buffer() { std::free(p); }
};

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
void copy_chunk(char* dst, const char* src, size_t n) { std::memcpy(dst, src, n); }

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
float sum_chunk(const float* p, size_t n) {
  v16f a0{}, a1{}, a2{}, a3{};
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    v16f x0, x1, x2, x3;
    std::memcpy(&x0, p + i, 64);
    std::memcpy(&x1, p + i + 16, 64);
    std::memcpy(&x2, p + i + 32, 64);
    std::memcpy(&x3, p + i + 48, 64);
    a0 += x0, a1 += x1, a2 += x2, a3 += x3;
  }
  v16f a = (a0 + a1) + (a2 + a3);
  float s = 0;
  for (int k = 0; k < 16; ++k) s += a[k];
  for (; i < n; ++i) s += p[i];
  return s;
}

// 12 independent accumulators hide the FMA latency (4 cycles) at 2-3 FMAs per cycle.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
float fma_loop(int64_t iters, float seed) {
  v16f a[12];
  const v16f m = v16f{} + 0.999999f, c = v16f{} + 1e-7f * seed;
  for (int j = 0; j < 12; ++j) a[j] = v16f{} + seed * float(j + 1);
  for (int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < 12; ++j) a[j] = a[j] * m + c;
  float s = 0;
  for (int j = 0; j < 12; ++j) s += a[j][j % 16];
  return s;
}

// Best rate over reps runs of `parallel_body(thread)` on `threads` threads: units / second / 1e9.
template <typename Body>
double best_rate(int threads, int reps, double units, const Body& parallel_body) {
  double best = 0;
  volatile float sink = 0;
  for (int r = 0; r < reps; ++r) {
    float total = 0;
    auto t0 = Clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : total)
    total += parallel_body(omp_get_thread_num());
    best = std::max(best, units / seconds_since(t0) / 1e9);
    sink = sink + total;  // keeps the work observable
  }
  return best;
}

}  // namespace

double copy_bandwidth_gbs(int threads, size_t bytes, int reps) {
  Buffer a(bytes), b(bytes);
  const size_t chunk = (bytes / size_t(threads) + 4095) / 4096 * 4096;
#pragma omp parallel num_threads(threads)
  {
    const size_t lo = std::min(bytes, chunk * size_t(omp_get_thread_num())), hi = std::min(bytes, lo + chunk);
    std::memset(a.p + lo, 1, hi - lo);
    std::memset(b.p + lo, 2, hi - lo);
  }
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
#pragma omp parallel num_threads(threads)
    {
      const size_t lo = std::min(bytes, chunk * size_t(omp_get_thread_num())), hi = std::min(bytes, lo + chunk);
      copy_chunk(a.p + lo, b.p + lo, hi - lo);
    }
    best = std::max(best, 2.0 * double(bytes) / seconds_since(t0) / 1e9);
  }
  return best;
}

double read_bandwidth_gbs(int threads, size_t bytes, int reps) {
  Buffer a(bytes);
  const size_t floats = bytes / 4, chunk = (floats / size_t(threads) + 1023) / 1024 * 1024;
  float* f = reinterpret_cast<float*>(a.p);
  auto range = [&](int t) {
    const size_t lo = std::min(floats, chunk * size_t(t));
    return std::pair<size_t, size_t>{lo, std::min(floats, lo + chunk)};
  };
#pragma omp parallel num_threads(threads)
  {
    const auto [lo, hi] = range(omp_get_thread_num());
    for (size_t i = lo; i < hi; ++i) f[i] = float(i & 7);
  }
  return best_rate(threads, reps, double(floats) * 4.0, [&](int t) {
    const auto [lo, hi] = range(t);
    return sum_chunk(f + lo, hi - lo);
  });
}

double fma_peak_gflops(int threads, int reps, int64_t iters) {
  return best_rate(threads, reps, 2.0 * 16 * 12 * double(iters) * threads,
                   [&](int t) { return fma_loop(iters, 1.0f + float(t)); });
}

const char* simd_level() {
  static const char* level = [] {
    __builtin_cpu_init();
    const bool v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c") && __builtin_cpu_supports("bmi2");
    const bool v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                    __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                    __builtin_cpu_supports("avx512cd");
    const char* best = v4 ? "avx512" : v3 ? "avx2" : "generic";
    // HPCINFER_SIMD caps the level (tests and A/B runs of the narrower paths on a wider CPU).
    const char* cap = std::getenv("HPCINFER_SIMD");
    if (cap && std::strcmp(cap, "generic") == 0) return "generic";
    if (cap && std::strcmp(cap, "avx2") == 0 && (v3 || v4)) return "avx2";
    return best;
  }();
  return level;
}

}  // namespace hpcinfer::kernels
