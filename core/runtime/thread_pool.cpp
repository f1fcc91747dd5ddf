#include "core/runtime/thread_pool.hpp"

#include <omp.h>

#include <algorithm>

namespace hpcinfer {

ThreadPool::ThreadPool(int threads) : threads_(threads > 0 ? threads : omp_get_max_threads()) {}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int t = int(std::min<int64_t>(threads_, n));
  if (t <= 1) {
    fn(0, n);
    return;
  }
  // kChunksPerThread contiguous chunks per thread, taken in order by whichever thread is free: a thread slowed by
  // the machine (a descheduled vCPU, a neighbour's memory traffic) takes fewer, instead of everyone waiting for it.
  constexpr int64_t kChunksPerThread = 4;
  const int64_t chunks = std::min<int64_t>(n, int64_t(t) * kChunksPerThread);
#pragma omp parallel for num_threads(t) schedule(dynamic, 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
    if (b < e) fn(b, e);
  }
}

}  // namespace hpcinfer
