// Communicator over MPI (host memory). Every call is a nonblocking MPI operation completed by an MPI_Test loop
// against the op's deadline (CommInit.timeout), so a hung peer becomes an error instead of a hang:
// - point to point: the request is cancelled and the communicator stays usable;
// - collectives: cannot be cancelled in MPI, so the communicator is marked unusable after a timeout.
// A dead peer normally makes mpirun abort the whole job (MPI's default); we report what MPI returns otherwise.
//
// Buffered send: MPI_Isend on an owned copy; the requests are kept and MPI_Test-ed (non-blocking; finished ones
// are freed) at the start of every call, which reports a failed or overdue send naming the peer; barrier() and the
// destructor wait for them all (deadline loop). More than 1 GiB in flight makes send() wait for the oldest.
// Groups (CommInit.group): MPI_Comm_split(MPI_COMM_WORLD, color = hash of the name, key = CommInit.rank), a
// collective over the whole world; peer numbers are then group ranks.
#pragma once

#include <mpi.h>

#include <chrono>
#include <deque>
#include <string>
#include <vector>

#include "hpcinfer/communicator.hpp"

namespace hpcinfer::mpi_comm {

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator() = default;
  ~MpiCommunicator() override;  // frees our communicator; finalizes MPI if init() initialized it

  void init(const CommInit& init) override;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  MemorySpace memory_space() const override { return MemorySpace::host; }

  void send(const void* buf, size_t bytes, int dst, uint32_t tag) override;
  void recv(void* buf, size_t bytes, int src, uint32_t tag) override;
  void allreduce_sum_f32(float* data, size_t count) override;
  void allreduce_sum_bf16(uint16_t* data, size_t count) override;
  void allgather(const void* in, size_t bytes_per_rank, void* out) override;
  void alltoallv(const void* send, const size_t* send_bytes, void* recv, const size_t* recv_bytes) override;
  void broadcast(void* buf, size_t bytes, int root) override;
  void barrier() override;
  CommStats stats() const override { return stats_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Op {
    const char* name;
    Clock::time_point start;
  };
  Op begin(const char* name);
  void end(const Op& op, uint64_t sent, uint64_t received);
  // Completes `req` or throws after the timeout; `peer` >= 0 names the peer of a point-to-point op.
  void wait(const Op& op, MPI_Request& req, int rc, int peer, const char* direction);
  [[noreturn]] void fail(const Op& op, const std::string& what, bool broken);
  int checked_count(const Op& op, size_t n) const;  // MPI counts are int
  std::string peer_name(int peer) const;             // "rank 3" or "rank 3 of group tp.stage0"

  // Buffered sends still in flight, oldest first.
  struct PendingSend {
    std::vector<uint8_t> data;  // [bytes] owned copy of the caller's buffer
    MPI_Request req;
    int dst;
    Clock::time_point deadline;
  };
  bool progress_sends(const Op& op);  // MPI_Test each; throws on a failed or overdue one; true when none is left
  void wait_sends(const Op& op);      // progress_sends until none is left (each bounded by its deadline)
  static constexpr size_t kMaxPendingBytes = size_t(1) << 30;
  std::deque<PendingSend> pending_;
  size_t pending_bytes_ = 0;

  int rank_ = 0;
  int size_ = 1;
  std::string group_;  // CommInit.group
  std::string who_;    // "rank 1" or "rank 1 of group tp.stage0 (world rank 3)", for errors
  std::chrono::milliseconds timeout_{60000};
  MPI_Comm comm_ = MPI_COMM_NULL;
  int tag_ub_ = 32767;
  CommStats stats_;
  std::string broken_;
};

}  // namespace hpcinfer::mpi_comm
