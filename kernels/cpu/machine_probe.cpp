#include "kernels/cpu/machine_probe.hpp"

#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace hpcinfer::kernels {
namespace {

using Clock = std::chrono::steady_clock;

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

void copy_chunk(char* dst, const char* src, size_t n) { std::memcpy(dst, src, n); }

// The probe loops of `isa` ("" = simd_level()); an ISA this CPU does not run is an error, not a crash.
ProbeLoops loops_for(const std::string& isa) {
  const std::string level = isa.empty() ? simd_level() : isa;
  const auto here = simd_levels_here();
  if (std::find(here.begin(), here.end(), level) == here.end())
    throw std::invalid_argument("machine probe: this CPU does not run instruction set '" + level + "'");
  if (level == "avx512") return probe_loops_avx512();
  if (level == "avx2") return probe_loops_avx2();
  return probe_loops_generic();
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

double read_bandwidth_gbs(int threads, size_t bytes, int reps, const std::string& isa) {
  Buffer a(bytes);
  const size_t floats = bytes / 4, chunk = read_chunk_floats(floats, threads);
  float* f = reinterpret_cast<float*>(a.p);
#pragma omp parallel num_threads(threads)
  {
    const size_t lo = std::min(floats, chunk * size_t(omp_get_thread_num())), hi = std::min(floats, lo + chunk);
    for (size_t i = lo; i < hi; ++i) f[i] = float(i & 7);
  }
  return read_rate_gbs(f, floats, threads, reps, isa);
}

size_t read_chunk_floats(size_t floats, int threads) { return (floats / size_t(threads) + 1023) / 1024 * 1024; }

double read_rate_gbs(const float* p, size_t floats, int threads, int reps, const std::string& isa) {
  const ProbeLoops loops = loops_for(isa);
  const size_t chunk = read_chunk_floats(floats, threads);
  return best_rate(threads, reps, double(floats) * 4.0, [&](int t) {
    const size_t lo = std::min(floats, chunk * size_t(t)), hi = std::min(floats, lo + chunk);
    return loops.sum(p + lo, hi - lo);
  });
}

double fma_peak_gflops(int threads, int reps, int64_t iters, const std::string& isa) {
  const ProbeLoops loops = loops_for(isa);
  return best_rate(threads, reps, 2.0 * loops.lanes * 12 * double(iters) * threads,
                   [&](int t) { return loops.fma(iters, 1.0f + float(t)); });
}

namespace {
bool cpu_has_v3() {
  __builtin_cpu_init();
#if defined(__clang__) && __clang_major__ < 16  // clang 14 (the fuzz/sanitizer builds) knows no "f16c" / "bmi2" here;
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");  // every AVX2 + FMA x86-64 has both
#else
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c") &&
         __builtin_cpu_supports("bmi2");
#endif
}
bool cpu_has_v4() {
  return cpu_has_v3() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512cd");
}
}  // namespace

std::vector<std::string> simd_levels_here() {
  std::vector<std::string> out{"generic"};
  if (cpu_has_v3()) out.push_back("avx2");
  if (cpu_has_v4()) out.push_back("avx512");
  return out;
}

const char* simd_level() {
  static const char* level = [] {
    const bool v3 = cpu_has_v3(), v4 = cpu_has_v4();
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
