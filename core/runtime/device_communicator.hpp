// A transport seen through a device backend: every call first waits for the backend's queued ops (a device
// backend's kernels run asynchronously, and a transport reads or writes the buffers they produce), and every buffer
// that is not in the transport's memory space is staged through one that is:
//   gloo / mpi (host memory) with device: cuda   device buffers go down to page-locked host buffers and back;
//   nccl (device memory) with device: cuda       host buffers (the pipeline's headers) go up to device buffers.
// Results are the inner transport's, byte for byte; only the copies are added. Used by RankSession for every
// communicator of a rank whose backend is not the host's (a host backend talks to its transport directly).
// Threading: one caller thread, as the Communicator contract says.
#pragma once

#include <memory>
#include <vector>

#include "hpcinfer/backend.hpp"
#include "hpcinfer/communicator.hpp"

namespace hpcinfer {

class DeviceCommunicator final : public Communicator {
 public:
  DeviceCommunicator(std::unique_ptr<Communicator> inner, Backend& be);
  DeviceCommunicator(Communicator& inner, Backend& be);  // not owning `inner` (tests)
  ~DeviceCommunicator() override;

  void init(const CommInit& init) override { inner_->init(init); }
  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  // The backend's: callers hand it the backend's buffers (and host ones).
  MemorySpace memory_space() const override { return be_.memory_space(); }

  void send(const void* buf, size_t bytes, int dst, uint32_t tag) override;
  void recv(void* buf, size_t bytes, int src, uint32_t tag) override;
  void allreduce_sum_f32(float* data, size_t count) override;
  void allreduce_sum_bf16(uint16_t* data, size_t count) override;
  void allgather(const void* in, size_t bytes_per_rank, void* out) override;
  void alltoallv(const void* send, const size_t* send_bytes, void* recv, const size_t* recv_bytes) override;
  void broadcast(void* buf, size_t bytes, int root) override;
  void barrier() override;
  CommStats stats() const override { return inner_->stats(); }

  Communicator& inner() { return *inner_; }
  uint64_t staged_bytes() const { return staged_bytes_; }  // bytes copied between memory spaces so far

 private:
  // A buffer of `bytes` in the transport's memory space standing in for `p` (p itself when it already is there).
  struct Stand {
    void* p;
    bool staged;
  };
  Stand stand_in(const void* p, size_t bytes, int which, bool copy_in);
  void copy_back(const Stand& s, void* p, size_t bytes);
  bool in_transport_space(const void* p) const;

  std::unique_ptr<Communicator> owned_;
  Communicator* inner_;
  Backend& be_;
  struct Buffer {
    void* p = nullptr;
    size_t bytes = 0;
    bool on_device = false;
  };
  Buffer buffers_[2];
  uint64_t staged_bytes_ = 0;
};

}  // namespace hpcinfer
