// Collectives through shared memory for the ranks of one gloo communicator that all run on one host.
//
// Why: over gloo's TCP pairs every message is completed by gloo's I/O thread waking the caller through a condition
// variable, so a tensor-parallel all-reduce costs milliseconds on busy cores (issue 19: 3.4 ms per 64 KB, 7x mpi).
// Here the ranks meet in one POSIX shared-memory segment: each writes its block into its own slot, waits at a
// barrier (spinning briefly, then sleeping on a futex in the shared page), reads the others' blocks, and waits at a
// second barrier before its slot may be written again. No thread hand-off, no copies through sockets.
//
// Results: an all-reduce sums the ranks' values in rank order (rank 0 + rank 1 + ...), the same order on every
// rank, so all ranks hold bit-identical sums (with two ranks also the same bits as the TCP ring: a + b = b + a).
// Messages larger than a slot go through in slot-sized pieces.
// Faults: a rank waiting checks the missing ranks' processes every 50 ms (a killed rank is named at once: "rank 1
// (pid N) died"); otherwise every wait ends at the call's deadline naming the ranks that did not arrive.
// Lifetime: rank 0 creates the segment, every rank maps it, and rank 0 unlinks its name once all have mapped it, so
// nothing is left in /dev/shm even when a rank is killed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace hpcinfer::gloo_comm {

class ShmCollectives {
 public:
  using Deadline = std::chrono::steady_clock::time_point;
  // Rank 0 creates the segment `name` (/dev/shm, pages reserved up front) and maps it; the other ranks map the one
  // rank 0 made. Throws std::runtime_error naming the segment and the system call when that fails (the caller then
  // keeps the TCP path on every rank: it agrees on that through the store).
  ShmCollectives(int rank, int size, const std::string& name, size_t slot_bytes);
  ~ShmCollectives();
  // Rank 0, once every rank has mapped the segment: removes its name (the mappings keep the memory).
  void unlink_name();
  ShmCollectives(const ShmCollectives&) = delete;
  ShmCollectives& operator=(const ShmCollectives&) = delete;

  // data[count] summed over the ranks in place. Throws std::runtime_error naming missing ranks at the deadline.
  void allreduce_sum_f32(float* data, size_t count, Deadline deadline, const std::string& who);
  // out[size][bytes_per_rank] = every rank's `in`.
  void allgather(const void* in, size_t bytes_per_rank, void* out, Deadline deadline, const std::string& who);

 private:
  struct Header;
  void barrier(Deadline deadline, const std::string& who, const char* op);
  uint8_t* slot(int r) const;

  int rank_, size_;
  std::string name_;
  size_t slot_bytes_, map_bytes_ = 0;
  void* map_ = nullptr;
  Header* hdr_ = nullptr;
  uint32_t gen_ = 0;  // this rank's count of barriers passed
};

}  // namespace hpcinfer::gloo_comm
