// Communicator over Gloo TCP (host memory). Collectives are built here from Gloo's tagged point-to-point
// (unbound buffers) so every wait knows which peer it waits on: a timeout or a dead peer is reported as
// "gloo: <op>: recv from rank N ...". Gloo provides connection setup, framing and the I/O thread.
//
// Buffered send: send() copies the bytes, posts the gloo send at once (posting never blocks) and hands the copy
// to this communicator's completion thread, which waits for the sends in order (UnboundBuffer::waitSend with the
// send's deadline: never a short poll, a timed-out wait poisons the whole gloo context) and records the first
// error, naming the peer, for the next call to throw. Gloo keeps sends to one peer on one slot in FIFO order.
// Thread safety: posting happens on the caller's thread only; gloo's Pair and Context guard their queues with
// their own mutexes, and we also serialize posts with post_mu_ (never held across a wait).
// Groups (CommInit.group): a separate full mesh whose store keys carry the group name.
// Same host: when every rank of the communicator runs on one host (same boot id and network / mount / IPC
// namespaces, agreed through the store), all-reduce, all-gather and (in the world communicator) point-to-point
// messages up to 1 MiB go through shared memory instead (shm_transport.hpp: no I/O-thread hand-off per message; larger messages stay on TCP in
// order); HPCINFER_GLOO_SHM=0 keeps everything on TCP. Broadcast, barrier and alltoallv always use TCP.
#pragma once

#include <gloo/rendezvous/context.h>
#include <gloo/transport/unbound_buffer.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "hpcinfer/communicator.hpp"
#include "shm_transport.hpp"

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
  void alltoallv(const void* send, const size_t* send_bytes, void* recv, const size_t* recv_bytes) override;
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
  void sum_f32(const Op& op, float* data, size_t count);  // shared memory when set up, else the TCP ring
  // After the mesh is up: shared-memory collectives when every rank is on this host and all could map the segment.
  void setup_shared_memory(const CommInit& init, const std::string& key_prefix);
  void check_peer(const char* op, int peer) const;
  void check_ready(const char* op);
  std::string peer_name(int peer) const;  // "rank 3 (host n2)" or "rank 3 of group tp.stage0 (host n2)"
  std::string group_suffix() const;       // "" or " of group tp.stage0"

  // ---- buffered sends ----
  struct PendingSend {
    std::vector<uint8_t> data;  // [bytes] owned copy of the caller's buffer
    std::unique_ptr<::gloo::transport::UnboundBuffer> tx;
    int dst;
    Clock::time_point deadline;
  };
  void completion_loop();                // the completion thread's body
  void wait_sends(const Op& op);         // until every pending send completed (or failed)
  void throw_send_error(const char* op);  // throws the recorded send error, if any
  static constexpr size_t kMaxPendingBytes = size_t(1) << 30;
  std::mutex post_mu_;                 // serializes posting to gloo (never held across a wait)
  std::mutex q_mu_;                    // guards everything below
  std::condition_variable q_cv_;
  std::deque<PendingSend> pending_;    // posted, not yet completed; front = oldest
  size_t pending_bytes_ = 0;
  bool busy_ = false;                  // the completion thread is waiting on a send it took off the queue
  bool stop_ = false;
  std::string send_error_;             // first error of a send in flight
  std::thread completer_;

  int rank_ = 0;
  int size_ = 1;
  std::string who_;    // "rank 1" or "rank 1 of group tp.stage0 (world rank 3)", for errors
  std::string group_;  // CommInit.group
  KeyValueStore* store_ = nullptr;  // CommInit.store: the peers' host names, read only for error messages
  std::string key_prefix_;
  std::chrono::milliseconds timeout_{60000};
  std::shared_ptr<::gloo::rendezvous::Context> context_;
  std::unique_ptr<ShmTransport> shm_;  // null: collectives over TCP
  CommStats stats_;
  std::string broken_;  // set after an error: the communicator is not usable any more
};

}  // namespace hpcinfer::gloo_comm
