// Shared memory for the ranks of one gloo communicator that all run on one host: collectives and point-to-point.
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
// Point-to-point: one ring per ordered pair of ranks. post() copies a message (tag, bytes, payload) into the ring to
// its destination and returns (buffered, as Communicator::send promises) unless the ring is full; a message over
// max_message() stays on TCP and the ring carries a marker in its place, so the receiver takes every message of a
// (peer, tag) in the order it was sent, whichever path carried it. take() parks messages of other tags it meets.
// `who` arguments: appended to the peer in messages (" of group tp.stage0", or empty). Errors read "recv from rank 1
// timed out (shared memory: ...)", "allreduce failed (shared memory): rank 1 (pid N) died, its process is gone".
// Faults: a rank waiting checks the missing ranks' processes every 50 ms (a killed rank is named at once: "rank 1
// (pid N) died"); otherwise every wait ends at the call's deadline naming the ranks that did not arrive.
// Lifetime: rank 0 creates the segment, every rank maps it, and rank 0 unlinks its name once all have mapped it, so
// nothing is left in /dev/shm even when a rank is killed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace hpcinfer::gloo_comm {

class ShmTransport {
 public:
  using Deadline = std::chrono::steady_clock::time_point;
  // Rank 0 creates the segment `name` (/dev/shm, pages reserved up front) and maps it; the other ranks map the one
  // rank 0 made. Throws std::runtime_error naming the segment and the system call when that fails (the caller then
  // keeps the TCP path on every rank: it agrees on that through the store).
  // slot_bytes per rank for collectives, ring_bytes per ordered pair for point-to-point (0: no rings).
  ShmTransport(int rank, int size, const std::string& name, size_t slot_bytes, size_t ring_bytes);
  ~ShmTransport();
  // Rank 0, once every rank has mapped the segment: removes its name (the mappings keep the memory).
  void unlink_name();
  ShmTransport(const ShmTransport&) = delete;
  ShmTransport& operator=(const ShmTransport&) = delete;

  // data[count] summed over the ranks in place. Throws std::runtime_error naming missing ranks at the deadline.
  void allreduce_sum_f32(float* data, size_t count, Deadline deadline, const std::string& who);
  // out[size][bytes_per_rank] = every rank's `in`.
  void allgather(const void* in, size_t bytes_per_rank, void* out, Deadline deadline, const std::string& who);

  // Point-to-point. The largest payload a ring carries (0 without rings).
  size_t max_message() const;
  // Into the ring to `dst`: the payload, or (marker) a note that a message of `bytes` comes over TCP. Waits for room.
  void post(int dst, uint32_t tag, const void* data, size_t bytes, bool marker, Deadline deadline,
            const std::string& who);
  // The next message from `src` with `tag` (bytes must match): copied into buf and true, or false for a marker (the
  // caller then receives it over TCP).
  bool take(int src, uint32_t tag, void* buf, size_t bytes, Deadline deadline, const std::string& who);

 private:
  struct Header;
  struct Ring;
  struct Parked {  // a message take() read while looking for another tag
    bool marker;
    uint64_t bytes;
    std::vector<uint8_t> data;
  };
  void barrier(Deadline deadline, const std::string& who, const char* op);
  void wait_until(const std::function<bool()>& ready, std::atomic<uint32_t>* bell,
                  const std::function<std::vector<int>()>& awaited, Deadline deadline,
                  const std::function<std::string()>& what);
  uint8_t* slot(int r) const;
  size_t pair_index(int src, int dst) const;
  Ring* ring(int src, int dst) const;
  uint8_t* ring_data(int src, int dst) const;

  int rank_, size_;
  std::string name_;
  size_t slot_bytes_, ring_bytes_, map_bytes_ = 0, rings_offset_ = 0, ring_data_offset_ = 0;
  std::map<std::pair<int, uint32_t>, std::deque<Parked>> parked_;  // (src, tag) -> messages set aside
  void* map_ = nullptr;
  Header* hdr_ = nullptr;
  uint32_t gen_ = 0;  // this rank's count of barriers passed
};

}  // namespace hpcinfer::gloo_comm
