// Communicator over Gloo TCP (host memory). Collectives are built here from Gloo's tagged point-to-point
// (unbound buffers) so every wait knows which peer it waits on: a timeout or a dead peer is reported as
// "gloo: <op>: recv from rank N ...". Gloo provides connection setup, framing and the I/O thread.
#pragma once

#include <gloo/rendezvous/context.h>

#include <chrono>
#include <memory>
#include <string>

#include "hpcinfer/communicator.hpp"

namespace hpcinfer::gloo_comm {

class GlooCommunicator : public Communicator {
 public:
  GlooCommunicator() = default;
  ~GlooCommunicator() override;

  void init(const CommInit& init) override;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  MemorySpace memory_space() const override { return MemorySpace::host; }

  void send(const void* buf, size_t bytes, int dst, uint32_t tag) override;
  void recv(void* buf, size_t bytes, int src, uint32_t tag) override;
  void allreduce_sum_f32(float* data, size_t count) override;
  void allreduce_sum_bf16(uint16_t* data, size_t count) override;
  void allgather(const void* in, size_t bytes_per_rank, void* out) override;
  void broadcast(void* buf, size_t bytes, int root) override;
  void barrier() override;
  CommStats stats() const override { return stats_; }

 private:
  using Clock = std::chrono::steady_clock;

  // One call in flight: its name (for errors), its deadline and the start time (for stats).
  struct Op {
    const char* name;
    Clock::time_point start;
    Clock::time_point deadline;
  };
  Op begin(const char* name);
  void end(const Op& op);
  [[noreturn]] void fail(const Op& op, const std::string& what);

  // Posts a send to `dst` and a receive from `src` (either may be -1 = none) on `slot`, then waits for both
  // before op.deadline. Errors name the op and the peer.
  void exchange(const Op& op, uint64_t slot, const void* send_buf, size_t send_bytes, int dst, void* recv_buf,
                size_t recv_bytes, int src);
  void ring_allreduce_f32(const Op& op, float* data, size_t count);
  void check_peer(const char* op, int peer) const;
  void check_ready(const char* op) const;

  int rank_ = 0;
  int size_ = 1;
  std::chrono::milliseconds timeout_{60000};
  std::shared_ptr<::gloo::rendezvous::Context> context_;
  CommStats stats_;
  std::string broken_;  // set after an error: the communicator is not usable any more
};

}  // namespace hpcinfer::gloo_comm
