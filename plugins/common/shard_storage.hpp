// Pieces every CPU weights plugin shares: the CPU backend's thread team, huge-page storage for packed shards, the
// shard range check, the embedding lookup, and how a matmul splits weight rows over threads.
// Header-only so each plugin .so carries its own copy (plugins link nothing of the core).
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <exception>
#include <mutex>
#include <cstdlib>
#include <stdexcept>
#include <cstring>
#include <cstdint>
#include <memory>
#include <string>

#include "hpcinfer/backend.hpp"
#include "hpcinfer/tensor.hpp"
#include "hpcinfer/weight_format.hpp"
#include "kernels/cpu/matmul.hpp"

namespace hpcinfer::plugins {

// 2 MiB-aligned storage, advised onto transparent huge pages (weights are streamed every decode step); or, adopted
// from the packed-weight cache, `count` elements of read-only memory that `owner` (the mapped file) keeps alive.
template <typename T>
struct HugeBuffer {
  T* ptr = nullptr;
  size_t count = 0;
  std::shared_ptr<const void> owner;  // set: borrowed memory, never written or freed here
  HugeBuffer(const HostBytes& image, std::shared_ptr<const void> keep, const char* what)
      : ptr(static_cast<T*>(const_cast<void*>(image.data))), count(image.bytes / sizeof(T)), owner(std::move(keep)) {
    if (image.bytes % sizeof(T) != 0 || reinterpret_cast<uintptr_t>(image.data) % 64 != 0)
      throw std::invalid_argument(std::string("packed-weight cache: ") + what + " region of " +
                                  std::to_string(image.bytes) + " bytes is not whole elements on a 64-byte boundary");
  }
  explicit HugeBuffer(size_t n) : count(n) {
    const size_t align = size_t(2) << 20;
    // Not rounded up to whole 2 MiB: a huge page over the rounded tail would be resident for nothing (up to 2 MiB
    // per matrix: about 7% of a tinyllama's RSS). posix_memalign, not aligned_alloc: C requires aligned_alloc's size
    // to be a multiple of the alignment (ASan enforces it; glibc does not).
    const size_t bytes = std::max<size_t>((n * sizeof(T) + 4095) / 4096 * 4096, 4096);
    void* p = nullptr;
    if (posix_memalign(&p, align, bytes) != 0 || !p)
      throw std::runtime_error("out of memory packing weights (" + std::to_string(bytes) + " bytes)");
    ptr = static_cast<T*>(p);
    madvise(ptr, bytes, MADV_HUGEPAGE);
  }
  ~HugeBuffer() {
    if (!owner) std::free(ptr);
  }
  HostBytes image() const { return {ptr, count * sizeof(T)}; }
  HugeBuffer(const HugeBuffer&) = delete;
  HugeBuffer& operator=(const HugeBuffer&) = delete;
};

// The thread team of a CPU backend; weights plugin `plugin` packs for nothing else.
inline Executor& cpu_executor(Backend& be, const std::string& plugin) {
  Executor* ex = be.host_threads();
  if (be.name() != "cpu" || !ex)
    throw std::invalid_argument("weights plugin '" + plugin + "' packs for the cpu backend only, not '" + be.name() + "'");
  return *ex;
}

// PackedMatrix::gather_rows for host formats: out[i] = row ids[i] - offset (dequantized), zeros outside the shard.
template <typename Matrix>
void gather_rows_on_host(const Matrix& m, const int* ids, int64_t n, int64_t offset, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = int64_t(ids[i]) - offset;
    if (r >= 0 && r < m.rows())
      m.dequantize_row(r, out + i * m.cols());
    else
      std::memset(out + i * m.cols(), 0, size_t(m.cols()) * sizeof(float));
  }
}

// Packing: fill(block) for blocks [0, n) of kernels::kPanelRows rows, split over ex's threads in contiguous ranges as
// for_row_blocks splits a matmul (each thread first touches the pages it will stream; on these VMs faulting fresh
// memory in is most of a load's time, and it runs in parallel). The first exception is rethrown on the caller.
template <typename Fill>
void pack_blocks(int64_t n, Executor& ex, const Fill& fill) {
  std::mutex m;
  std::exception_ptr err;
  ex.parallel_for(n, [&](int64_t b0, int64_t b1) {
    try {
      for (int64_t b = b0; b < b1; ++b) fill(b);
    } catch (...) {
      std::lock_guard<std::mutex> g(m);
      if (!err) err = std::current_exception();
    }
  });
  if (err) std::rethrow_exception(err);
}

inline void check_ranges(const TensorView& src, Range rows, Range cols) {
  if (rows.begin < 0 || rows.end > src.rows || rows.begin >= rows.end || cols.begin < 0 || cols.end > src.cols ||
      cols.begin >= cols.end)
    throw std::invalid_argument("tensor " + src.name + " [" + std::to_string(src.rows) + " x " +
                                std::to_string(src.cols) + "]: shard rows [" + std::to_string(rows.begin) + ", " +
                                std::to_string(rows.end) + ") cols [" + std::to_string(cols.begin) + ", " +
                                std::to_string(cols.end) + ") is out of range");
}

// Runs kernel(r0, r1) over weight rows [0, rows) split across ex's threads in blocks of kernels::kPanelRows (every
// thread streams its own slice of W; the panel layouts need every range but the last to start and end on a panel).
// Work below kInlineMacs multiply-adds (rows x cols x n) runs on the calling thread: a parallel region costs
// microseconds when the cores are free and milliseconds when another process holds one (every region waits for its
// slowest thread), which made tiny models decode at 2 tokens/s on a loaded machine. 2^19 (a 256 x 2048 GEMV, 1 MB of
// bf16 weights, is the smallest matmul that still splits): stories260K's lm head at batch 8 (2^18) on one thread
// keeps its pp=2 ranks' decode steps free of parallel regions, after which idle threads spin
// (core/runtime/shared_cores_env.hpp): pp=2 0.61x -> 0.78x of one process with a 0.1 ms spin (bench/RESULTS.md, issue 19).
template <typename Kernel>
void for_row_blocks(int64_t rows, int64_t cols, int64_t n, Executor& ex, const Kernel& kernel) {
  constexpr int64_t kRowBlock = kernels::kPanelRows, kInlineMacs = int64_t(1) << 19;
  if (rows * cols * std::max<int64_t>(n, 1) < kInlineMacs) {
    kernel(int64_t(0), rows);
    return;
  }
  const int64_t blocks = (rows + kRowBlock - 1) / kRowBlock;
  ex.parallel_for(blocks, [&](int64_t b0, int64_t b1) { kernel(b0 * kRowBlock, std::min(rows, b1 * kRowBlock)); });
}

}  // namespace hpcinfer::plugins
