#include "nccl_communicator.hpp"

#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#include "bf16_convert.hpp"

namespace hpcinfer::nccl_comm {
namespace {

std::string nccl_error(ncclComm_t comm, ncclResult_t r) {
  std::string s = ncclGetErrorString(r);
  if (comm) {
    const char* last = ncclGetLastError(comm);
    if (last && *last) s += std::string(" (") + last + ")";
  }
  return s;
}

std::string all_ranks(int size) { return "ranks 0.." + std::to_string(size - 1); }

}  // namespace

NcclCommunicator::~NcclCommunicator() {
  if (comm_ && broken_.empty()) {
    try {
      reap_sends(true);
    } catch (const std::exception&) {  // broken_ says why; the lanes are aborted below
    }
  }
  for (PendingSend& p : pending_) {
    if (p.done) cudaEventDestroy(p.done);
    if (p.buffer) cudaFree(p.buffer);
  }
  for (Lane& l : lanes_) {
    if (l.comm) {
      if (broken_.empty()) {
        ncclCommFinalize(l.comm);
        ncclCommDestroy(l.comm);
      } else {
        ncclCommAbort(l.comm);
      }
    }
    if (l.stream) cudaStreamDestroy(l.stream);
  }
  if (comm_) {
    if (broken_.empty()) {
      ncclCommFinalize(comm_);  // non-blocking comm: returns at once, work completes in Destroy
      ncclCommDestroy(comm_);
    } else {
      ncclCommAbort(comm_);
    }
  }
  if (scratch_) cudaFree(scratch_);
  if (copy_stream_) cudaStreamDestroy(copy_stream_);
  if (stream_) cudaStreamDestroy(stream_);
}

void NcclCommunicator::init(const CommInit& init) {
  if (comm_) throw std::runtime_error("nccl: init called twice on rank " + std::to_string(rank_));
  if (!init.store) throw std::invalid_argument("nccl: CommInit.store is null (rank " + std::to_string(init.rank) + ")");
  if (init.size < 1 || init.rank < 0 || init.rank >= init.size)
    throw std::invalid_argument("nccl: rank " + std::to_string(init.rank) + " is not in a world of size " +
                                std::to_string(init.size));
  rank_ = init.rank;
  size_ = init.size;
  timeout_ = init.timeout;
  who_ = "rank " + std::to_string(rank_) +
         (init.group.empty() ? "" : " of group " + init.group + " (world rank " + std::to_string(init.world_rank) + ")");
  const std::string where = "nccl: " + who_ + ": ";
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0)
    throw std::runtime_error(where + "no CUDA device: " + (err != cudaSuccess ? cudaGetErrorString(err) : "0 devices"));
  device_ = init.device >= 0 ? init.device : rank_ % count;
  if (device_ >= count)
    throw std::invalid_argument(where + "CommInit.device " + std::to_string(device_) + " but this host has " +
                                std::to_string(count) + " CUDA device(s)");
  if ((err = cudaSetDevice(device_)) != cudaSuccess ||
      (err = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)) != cudaSuccess)
    throw std::runtime_error(where + "CUDA device " + std::to_string(device_) + ": " + cudaGetErrorString(err));

  // Unique id: made by rank 0, read by everyone else from the store.
  const std::string key = (init.prefix.empty() ? "hpcinfer" : init.prefix) + "/nccl/" +
                          (init.group.empty() ? "" : init.group + "/") + "unique_id";
  ncclUniqueId id;
  if (rank_ == 0) {
    ncclResult_t r = ncclGetUniqueId(&id);
    if (r != ncclSuccess) throw std::runtime_error(where + "ncclGetUniqueId failed: " + ncclGetErrorString(r));
    init.store->set(key, std::vector<uint8_t>(reinterpret_cast<uint8_t*>(&id), reinterpret_cast<uint8_t*>(&id) + sizeof(id)));
  } else {
    std::vector<uint8_t> bytes = init.store->get(key, timeout_);  // throws naming the key after the timeout
    if (bytes.size() != sizeof(id))
      throw std::runtime_error(where + "store key '" + key + "' holds " + std::to_string(bytes.size()) +
                               " bytes, not an ncclUniqueId (" + std::to_string(sizeof(id)) + ")");
    std::memcpy(&id, bytes.data(), sizeof(id));
  }

  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;  // every call returns at once; we poll so that a timeout can abort
  Op op = begin("init", all_ranks(size_));
  ncclResult_t r = ncclCommInitRankConfig(&comm_, size_, id, rank_, &config);
  if (r != ncclSuccess && r != ncclInProgress) {
    comm_ = nullptr;
    throw std::runtime_error(where + "ncclCommInitRankConfig failed: " + ncclGetErrorString(r));
  }
  complete(op, r, 0, 0);
  {
    Op cop = begin("init (copy stream)", "none");
    check_cuda(cop, cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking), "stream");
  }
  // The two point-to-point lanes: communicators split from the main one (same ranks), each with its own stream.
  for (Lane& l : lanes_) {
    Op sop = begin("init (point-to-point lane)", all_ranks(size_));
    check_cuda(sop, cudaStreamCreateWithFlags(&l.stream, cudaStreamNonBlocking), "stream");
    ncclConfig_t lane_config = NCCL_CONFIG_INITIALIZER;
    lane_config.blocking = 0;
    ncclResult_t sr = ncclCommSplit(comm_, 0, rank_, &l.comm, &lane_config);
    complete(sop, sr, 0, 0);
    // a non-blocking split finishes asynchronously: wait until the new communicator says it is ready
    for (ncclResult_t st = ncclInProgress; st == ncclInProgress;) {
      ncclCommGetAsyncError(l.comm, &st);
      if (st != ncclSuccess && st != ncclInProgress) fail(sop, "ncclCommSplit: " + std::string(ncclGetErrorString(st)));
      if (Clock::now() > sop.start + timeout_) fail(sop, "ncclCommSplit timed out");
      if (st == ncclInProgress) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
}

NcclCommunicator::Op NcclCommunicator::begin(const char* name, std::string peers) {
  if (!comm_ && std::strcmp(name, "init") != 0) throw std::runtime_error(std::string("nccl: ") + name + " before init");
  if (!broken_.empty())
    throw std::runtime_error(std::string("nccl: ") + name + " on " + who_ +
                             ": communicator unusable after an earlier error: " + broken_);
  return Op{name, std::move(peers), Clock::now()};
}

void NcclCommunicator::fail(const Op& op, const std::string& what) {
  broken_ = std::string("nccl: ") + op.name + " on " + who_ + " (with " + op.peers + "): " + what;
  stats_.seconds += std::chrono::duration<double>(Clock::now() - op.start).count();
  stats_.calls += 1;
  throw std::runtime_error(broken_);
}

void NcclCommunicator::check_cuda(const Op& op, cudaError_t err, const char* what) {
  if (err != cudaSuccess) fail(op, std::string(what) + ": " + cudaGetErrorString(err));
}

void NcclCommunicator::complete(const Op& op, ncclResult_t enqueued, uint64_t sent, uint64_t received,
                                ncclComm_t comm, cudaStream_t stream) {
  if (!comm) comm = comm_;
  if (!stream) stream = stream_;
  if (enqueued != ncclSuccess && enqueued != ncclInProgress) fail(op, nccl_error(comm, enqueued));
  const auto deadline = op.start + timeout_;
  for (;;) {
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(comm, &async);
    if (async != ncclSuccess && async != ncclInProgress) {
      ncclCommAbort(comm_);
      comm_ = nullptr;
      fail(op, "NCCL error: " + std::string(ncclGetErrorString(async)));
    }
    if (async == ncclSuccess) {  // enqueued (or initialized); now wait for the GPU work
      cudaError_t q = stream ? cudaStreamQuery(stream) : cudaSuccess;
      if (q == cudaSuccess) break;
      if (q != cudaErrorNotReady) check_cuda(op, q, "stream");
    }
    if (Clock::now() >= deadline) {
      ncclCommAbort(comm_);  // unblocks kernels waiting on peers that will never come
      comm_ = nullptr;
      fail(op, "timed out after " + std::to_string(timeout_.count()) + " ms waiting on " + op.peers +
                   "; communicator aborted");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
  stats_.seconds += std::chrono::duration<double>(Clock::now() - op.start).count();
  stats_.calls += 1;
  stats_.bytes_sent += sent;
  stats_.bytes_received += received;
}

// Buffered: the bytes are copied into a buffer of the send's own and the send is left running (see the header).
void NcclCommunicator::send(const void* buf, size_t bytes, int dst, uint32_t tag) {
  Op op = begin("send", "rank " + std::to_string(dst));
  if (dst < 0 || dst >= size_ || dst == rank_) throw std::invalid_argument("nccl: send to invalid rank " + op.peers);
  reap_sends(false);
  Lane& lane = lanes_[tag & 1u];
  PendingSend p;
  p.dst = dst;
  p.start = op.start;
  check_cuda(op, cudaMalloc(&p.buffer, bytes ? bytes : 1), "send buffer");
  pending_.push_back(p);  // owned from here (freed by reap_sends or the destructor)
  PendingSend& q = pending_.back();
  // The copy runs on a stream of its own and is waited for (the caller may reuse `buf` on return); the send then
  // waits on the lane's stream for the peer, without the host.
  if (bytes) {
    check_cuda(op, cudaMemcpyAsync(q.buffer, buf, bytes, cudaMemcpyDeviceToDevice, copy_stream_), "send copy");
    check_cuda(op, cudaStreamSynchronize(copy_stream_), "send copy");
  }
  check_cuda(op, cudaEventCreateWithFlags(&q.done, cudaEventDisableTiming), "send event");
  const ncclResult_t r = ncclSend(q.buffer, bytes, ncclUint8, dst, lane.comm, lane.stream);
  if (r != ncclSuccess && r != ncclInProgress) fail(op, nccl_error(lane.comm, r));
  check_cuda(op, cudaEventRecord(q.done, lane.stream), "send event");
  stats_.calls += 1;
  stats_.bytes_sent += bytes;
  stats_.seconds += std::chrono::duration<double>(Clock::now() - op.start).count();
}

void NcclCommunicator::reap_sends(bool all) {
  for (size_t i = 0; i < pending_.size();) {
    PendingSend& p = pending_[i];
    cudaError_t q = cudaEventQuery(p.done);
    while (all && q == cudaErrorNotReady) {
      if (Clock::now() > p.start + timeout_) {
        Op op{"send", "rank " + std::to_string(p.dst), p.start};
        for (Lane& l : lanes_) ncclCommAbort(l.comm), l.comm = nullptr;
        fail(op, "timed out after " + std::to_string(timeout_.count()) + " ms: the peer never received it");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(20));
      q = cudaEventQuery(p.done);
    }
    if (q == cudaErrorNotReady) {
      ++i;
      continue;
    }
    if (q != cudaSuccess) {
      Op op{"send", "rank " + std::to_string(p.dst), p.start};
      check_cuda(op, q, "buffered send");
    }
    cudaEventDestroy(p.done);
    cudaFree(p.buffer);
    pending_.erase(pending_.begin() + long(i));
  }
}

void NcclCommunicator::recv(void* buf, size_t bytes, int src, uint32_t tag) {
  Op op = begin("recv", "rank " + std::to_string(src));
  if (src < 0 || src >= size_ || src == rank_) throw std::invalid_argument("nccl: recv from invalid rank " + op.peers);
  reap_sends(false);
  Lane& lane = lanes_[tag & 1u];
  complete(op, ncclRecv(buf, bytes, ncclUint8, src, lane.comm, lane.stream), 0, bytes, lane.comm, lane.stream);
}

void NcclCommunicator::allreduce_sum_f32(float* data, size_t count) {
  Op op = begin("allreduce_f32", all_ranks(size_));
  uint64_t moved = size_ > 1 ? 2 * uint64_t(size_ - 1) * count * sizeof(float) / uint64_t(size_) : 0;
  complete(op, ncclAllReduce(data, data, count, ncclFloat, ncclSum, comm_, stream_), moved, moved);
}

// NCCL's own bf16 sum rounds every partial sum to bf16 (once per ring step); we widen to f32 on the GPU, reduce
// in f32 and round once, as the contract asks.
void NcclCommunicator::allreduce_sum_bf16(uint16_t* data, size_t count) {
  Op op = begin("allreduce_bf16", all_ranks(size_));
  float* wide = scratch_f32(count);  // [count] f32
  check_cuda(op, bf16_to_f32_async(data, wide, count, stream_), "bf16 -> f32");
  ncclResult_t r = ncclAllReduce(wide, wide, count, ncclFloat, ncclSum, comm_, stream_);
  if (r != ncclSuccess && r != ncclInProgress) fail(op, nccl_error(comm_, r));
  if (r == ncclInProgress) {  // non-blocking comm: the enqueue must finish before more work goes on the stream
    ncclResult_t async = ncclInProgress;
    while (async == ncclInProgress) ncclCommGetAsyncError(comm_, &async);
    if (async != ncclSuccess) fail(op, nccl_error(comm_, async));
  }
  check_cuda(op, f32_to_bf16_async(wide, data, count, stream_), "f32 -> bf16");
  uint64_t moved = size_ > 1 ? 2 * uint64_t(size_ - 1) * count * sizeof(float) / uint64_t(size_) : 0;
  complete(op, ncclSuccess, moved, moved);
}

void NcclCommunicator::allgather(const void* in, size_t bytes_per_rank, void* out) {
  Op op = begin("allgather", all_ranks(size_));
  uint64_t moved = bytes_per_rank * uint64_t(size_ - 1);
  complete(op, ncclAllGather(in, out, bytes_per_rank, ncclUint8, comm_, stream_), moved, moved);
}

// One group of sends and receives, one per peer (NCCL's own all-to-all pattern), this rank's block by a device copy.
void NcclCommunicator::alltoallv(const void* send, const size_t* send_bytes, void* recv, const size_t* recv_bytes) {
  Op op = begin("alltoallv", all_ranks(size_));
  const auto* s = static_cast<const uint8_t*>(send);
  auto* r = static_cast<uint8_t*>(recv);
  uint64_t so = 0, ro = 0, sent = 0, got = 0;
  ncclResult_t res = ncclGroupStart();
  for (int q = 0; q < size_ && res == ncclSuccess; ++q) {
    if (q == rank_) {
      if (send_bytes[q] && cudaMemcpyAsync(r + ro, s + so, send_bytes[q], cudaMemcpyDeviceToDevice, stream_) != cudaSuccess)
        res = ncclUnhandledCudaError;
    } else {
      if (send_bytes[q] && res == ncclSuccess) res = ncclSend(s + so, send_bytes[q], ncclUint8, q, comm_, stream_);
      if (recv_bytes[q] && res == ncclSuccess) res = ncclRecv(r + ro, recv_bytes[q], ncclUint8, q, comm_, stream_);
      sent += send_bytes[q], got += recv_bytes[q];
    }
    so += send_bytes[q], ro += recv_bytes[q];
  }
  const ncclResult_t end_res = ncclGroupEnd();
  complete(op, res != ncclSuccess ? res : end_res, sent, got);
}

void NcclCommunicator::broadcast(void* buf, size_t bytes, int root) {
  Op op = begin("broadcast", "root rank " + std::to_string(root));
  if (root < 0 || root >= size_) throw std::invalid_argument("nccl: broadcast from invalid " + op.peers);
  complete(op, ncclBroadcast(buf, buf, bytes, ncclUint8, root, comm_, stream_),
           rank_ == root ? bytes * uint64_t(size_ - 1) : 0, rank_ == root ? 0 : bytes);
}

// A one-float allreduce on the scratch buffer: returns only when every rank has reached it.
void NcclCommunicator::barrier() {
  reap_sends(true);
  Op op = begin("barrier", all_ranks(size_));
  float* one = scratch_f32(1);
  complete(op, ncclAllReduce(one, one, 1, ncclFloat, ncclSum, comm_, stream_), 0, 0);
}

float* NcclCommunicator::scratch_f32(size_t count) {
  if (count <= scratch_count_ && scratch_) return scratch_;
  if (scratch_) {
    cudaStreamSynchronize(stream_);
    cudaFree(scratch_);
    scratch_ = nullptr;
  }
  cudaError_t err = cudaMalloc(&scratch_, std::max<size_t>(count, 1) * sizeof(float));
  if (err != cudaSuccess) {
    scratch_count_ = 0;
    throw std::runtime_error("nccl: rank " + std::to_string(rank_) + ": cannot allocate " +
                             std::to_string(count * sizeof(float)) + " bytes of scratch on device " +
                             std::to_string(device_) + ": " + cudaGetErrorString(err));
  }
  scratch_count_ = std::max<size_t>(count, 1);
  return scratch_;
}

}  // namespace hpcinfer::nccl_comm
