// The core's Executor: an OpenMP team of `threads` threads (0 = OpenMP's default: the cores this process may use).
#pragma once

#include "hpcinfer/tensor.hpp"

namespace hpcinfer {

class ThreadPool final : public Executor {
 public:
  explicit ThreadPool(int threads);
  int threads() const override { return threads_; }
  // Splits [0, n) into at most threads() contiguous chunks of near-equal size; runs them in parallel.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) override;

 private:
  int threads_;
};

}  // namespace hpcinfer
