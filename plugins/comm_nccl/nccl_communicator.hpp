// Communicator over NCCL: buffers are CUDA device memory on the device chosen at init (CommInit.device, or
// rank % device count). Rank 0 creates the ncclUniqueId and publishes it in the KeyValueStore under
// "<prefix>/nccl/unique_id"; the others read it there.
//
// Timeouts: the NCCL communicator is created non-blocking, and every call waits by polling
// ncclCommGetAsyncError + cudaStreamQuery against CommInit.timeout; on timeout or an asynchronous NCCL error the
// communicator is aborted (ncclCommAbort) and the call throws naming the op and the peer(s).
// Tags: NCCL has none. Messages between two ranks match in the order they are posted; `tag` is ignored.
// Groups (CommInit.group): the unique id key is "<prefix>/nccl/<group>/unique_id", made by the group's rank 0.
//
// Buffered send (the Communicator contract): send() copies the bytes into a device buffer of its own, enqueues
// ncclSend on a point-to-point communicator split from the main one and returns without waiting; the buffer is
// released once its event has completed (checked by later calls; barrier() and the destructor wait for all, each
// bounded by the timeout). Point-to-point traffic runs on two such communicators, chosen by the tag's parity, each
// with its own stream, so that a pipeline's forward messages (tag 1) and backward messages (tag 2) never queue
// behind each other (NCCL runs the operations of one communicator in the order they were issued: one shared queue
// deadlocks when two stages send to each other at once) nor behind the collectives of the main communicator.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <string>
#include <vector>

#include "hpcinfer/communicator.hpp"

namespace hpcinfer::nccl_comm {

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator() = default;
  ~NcclCommunicator() override;

  void init(const CommInit& init) override;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  MemorySpace memory_space() const override { return MemorySpace::cuda; }

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
    std::string peers;  // "rank 3" or "ranks 0..7": who we wait on, for errors
    Clock::time_point start;
  };
  Op begin(const char* name, std::string peers);
  // Checks the result of an enqueue call (ncclInProgress is fine), then waits for the stream to drain
  // (`comm`/`stream`: a point-to-point lane; null: the main communicator).
  void complete(const Op& op, ncclResult_t enqueued, uint64_t sent, uint64_t received, ncclComm_t comm = nullptr,
                cudaStream_t stream = nullptr);
  // Releases the buffers of completed sends; with `all`, waits for every one (bounded by the timeout).
  void reap_sends(bool all);
  void check_cuda(const Op& op, cudaError_t err, const char* what);
  [[noreturn]] void fail(const Op& op, const std::string& what);
  float* scratch_f32(size_t count);  // device buffer of at least `count` floats, reused

  int rank_ = 0;
  int size_ = 1;
  std::string who_;  // "rank 1" or "rank 1 of group tp.stage0 (world rank 3)", for errors
  int device_ = -1;
  std::chrono::milliseconds timeout_{60000};
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  struct Lane {  // a point-to-point communicator and its stream
    ncclComm_t comm = nullptr;
    cudaStream_t stream = nullptr;
  };
  Lane lanes_[2];  // by tag parity
  cudaStream_t copy_stream_ = nullptr;  // send() copies into its own buffer here
  struct PendingSend {
    void* buffer = nullptr;
    cudaEvent_t done = nullptr;
    int dst = 0;
    Clock::time_point start;
  };
  std::vector<PendingSend> pending_;
  float* scratch_ = nullptr;  // [scratch_count_] f32, device
  size_t scratch_count_ = 0;
  CommStats stats_;
  std::string broken_;
};

}  // namespace hpcinfer::nccl_comm
