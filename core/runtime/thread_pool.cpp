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
#pragma omp parallel num_threads(t)
  {
    const int64_t id = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t b = n * id / nt, e = n * (id + 1) / nt;
    if (b < e) fn(b, e);
  }
}

}  // namespace hpcinfer
