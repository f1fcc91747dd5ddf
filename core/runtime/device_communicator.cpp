#include "core/runtime/device_communicator.hpp"

#include <cstring>
#include <numeric>

namespace hpcinfer {

DeviceCommunicator::DeviceCommunicator(std::unique_ptr<Communicator> inner, Backend& be)
    : owned_(std::move(inner)), inner_(owned_.get()), be_(be) {}
DeviceCommunicator::DeviceCommunicator(Communicator& inner, Backend& be) : inner_(&inner), be_(be) {}

DeviceCommunicator::~DeviceCommunicator() {
  owned_.reset();  // its pending sends may still read the staging buffers
  for (Buffer& b : buffers_) {
    if (!b.p) continue;
    if (b.on_device) be_.free(b.p);
    else be_.host_free(b.p);
  }
}

bool DeviceCommunicator::in_transport_space(const void* p) const {
  const bool on_device = be_.is_device_pointer(p);
  return on_device == (inner_->memory_space() != MemorySpace::host);
}

DeviceCommunicator::Stand DeviceCommunicator::stand_in(const void* p, size_t bytes, int which, bool copy_in) {
  if (bytes == 0 || in_transport_space(p)) return {const_cast<void*>(p), false};
  Buffer& b = buffers_[which];
  const bool want_device = inner_->memory_space() != MemorySpace::host;
  if (b.bytes < bytes || b.on_device != want_device) {
    if (b.p) {
      if (b.on_device) be_.free(b.p);
      else be_.host_free(b.p);
    }
    b.p = want_device ? be_.alloc(bytes) : be_.host_alloc(bytes);
    b.bytes = bytes;
    b.on_device = want_device;
  }
  if (copy_in) {
    if (want_device) {  // host -> device, finished before another stream (the transport's) reads it
      be_.copy_to_device(b.p, p, bytes);
      be_.synchronize();
    } else {
      be_.copy_to_host(b.p, p, bytes);  // device -> host (waits)
    }
    staged_bytes_ += bytes;
  }
  return {b.p, true};
}

void DeviceCommunicator::copy_back(const Stand& s, void* p, size_t bytes) {
  if (!s.staged || bytes == 0) return;
  if (inner_->memory_space() != MemorySpace::host) be_.copy_to_host(p, s.p, bytes);
  else be_.copy_to_device(p, s.p, bytes);
  staged_bytes_ += bytes;
}

void DeviceCommunicator::send(const void* buf, size_t bytes, int dst, uint32_t tag) {
  be_.synchronize();
  const Stand s = stand_in(buf, bytes, 0, true);
  inner_->send(s.p, bytes, dst, tag);  // buffered: the staging buffer may be reused once this returns
}

void DeviceCommunicator::recv(void* buf, size_t bytes, int src, uint32_t tag) {
  be_.synchronize();
  const Stand s = stand_in(buf, bytes, 1, false);
  inner_->recv(s.p, bytes, src, tag);
  copy_back(s, buf, bytes);
}

void DeviceCommunicator::allreduce_sum_f32(float* data, size_t count) {
  be_.synchronize();
  const Stand s = stand_in(data, count * sizeof(float), 0, true);
  inner_->allreduce_sum_f32(static_cast<float*>(s.p), count);
  copy_back(s, data, count * sizeof(float));
}

void DeviceCommunicator::allreduce_sum_bf16(uint16_t* data, size_t count) {
  be_.synchronize();
  const Stand s = stand_in(data, count * 2, 0, true);
  inner_->allreduce_sum_bf16(static_cast<uint16_t*>(s.p), count);
  copy_back(s, data, count * 2);
}

void DeviceCommunicator::allgather(const void* in, size_t bytes_per_rank, void* out) {
  be_.synchronize();
  const Stand si = stand_in(in, bytes_per_rank, 0, true);
  const Stand so = stand_in(out, bytes_per_rank * size_t(size()), 1, false);
  inner_->allgather(si.p, bytes_per_rank, so.p);
  copy_back(so, out, bytes_per_rank * size_t(size()));
}

void DeviceCommunicator::alltoallv(const void* send, const size_t* send_bytes, void* recv, const size_t* recv_bytes) {
  be_.synchronize();
  const size_t n = size_t(size());
  const size_t out_total = std::accumulate(send_bytes, send_bytes + n, size_t(0));
  const size_t in_total = std::accumulate(recv_bytes, recv_bytes + n, size_t(0));
  const Stand ss = stand_in(send, out_total, 0, true);
  const Stand sr = stand_in(recv, in_total, 1, false);
  inner_->alltoallv(ss.p, send_bytes, sr.p, recv_bytes);
  copy_back(sr, recv, in_total);
}

void DeviceCommunicator::broadcast(void* buf, size_t bytes, int root) {
  be_.synchronize();
  const Stand s = stand_in(buf, bytes, 0, true);
  inner_->broadcast(s.p, bytes, root);
  copy_back(s, buf, bytes);
}

void DeviceCommunicator::barrier() {
  be_.synchronize();
  inner_->barrier();
}

}  // namespace hpcinfer
