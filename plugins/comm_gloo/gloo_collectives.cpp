// Ring allreduce and ring allgather over GlooCommunicator::exchange (send right, receive left, each step), or the
// shared-memory versions (shm_transport.hpp) when every rank is on this host.
#include <cstring>
#include <vector>

#include "gloo_communicator.hpp"
#include "kernels/cpu/convert.hpp"

namespace hpcinfer::gloo_comm {
namespace {

constexpr uint64_t kSlotAllreduce = (2ull << 40) | 3;
constexpr uint64_t kSlotAllgather = (2ull << 40) | 4;
constexpr uint64_t kSlotAlltoall = (2ull << 40) | 5;

// Chunk i of `count` elements split into n near-equal chunks: [begin, begin + len).
struct Chunk {
  size_t begin, len;
};
Chunk chunk_of(size_t count, int n, int i) {
  size_t base = count / size_t(n), extra = count % size_t(n);
  size_t ui = size_t(i);
  return Chunk{ui * base + std::min(ui, extra), base + (ui < extra ? 1 : 0)};
}

int mod(int a, int n) { return ((a % n) + n) % n; }

}  // namespace

// data: [count] f32, summed in place. Reduce-scatter (n-1 steps: rank r ends owning chunk r+1 fully summed) then
// allgather (n-1 steps). Every rank ends with bit-identical values.
void GlooCommunicator::ring_allreduce_f32(const Op& op, float* data, size_t count) {
  const int n = size_;
  if (n == 1 || count == 0) return;
  const int right = mod(rank_ + 1, n), left = mod(rank_ - 1, n);
  std::vector<float> incoming(chunk_of(count, n, 0).len);  // [largest chunk] partial sums from the left neighbour
  for (int s = 0; s < n - 1; ++s) {
    Chunk out = chunk_of(count, n, mod(rank_ - s, n));
    Chunk in = chunk_of(count, n, mod(rank_ - s - 1, n));
    exchange(op, kSlotAllreduce, data + out.begin, out.len * sizeof(float), right, incoming.data(),
             in.len * sizeof(float), left);
    float* dst = data + in.begin;
    for (size_t i = 0; i < in.len; ++i) dst[i] += incoming[i];
  }
  for (int s = 0; s < n - 1; ++s) {
    Chunk out = chunk_of(count, n, mod(rank_ + 1 - s, n));
    Chunk in = chunk_of(count, n, mod(rank_ - s, n));
    exchange(op, kSlotAllreduce, data + out.begin, out.len * sizeof(float), right, data + in.begin,
             in.len * sizeof(float), left);
  }
}

void GlooCommunicator::sum_f32(const Op& op, float* data, size_t count) {
  if (!shm_) return ring_allreduce_f32(op, data, count);
  try {
    shm_->allreduce_sum_f32(data, count, op.deadline, group_suffix());
  } catch (const std::runtime_error& e) {
    fail(op, e.what());
  }
  stats_.bytes_sent += count * sizeof(float);
  stats_.bytes_received += count * sizeof(float) * size_t(size_ - 1);
}

void GlooCommunicator::allreduce_sum_f32(float* data, size_t count) {
  Op op = begin("allreduce_f32");
  if (size_ > 1 && count > 0) sum_f32(op, data, count);
  end(op);
}

// bf16 in, bf16 out, f32 in between: widen, ring-sum in f32, round to nearest even once at the end.
void GlooCommunicator::allreduce_sum_bf16(uint16_t* data, size_t count) {
  Op op = begin("allreduce_bf16");
  if (size_ > 1 && count > 0) {
    std::vector<float> wide(count);  // [count] f32 copy of data
    for (size_t i = 0; i < count; ++i) wide[i] = kernels::bf16_to_f32(data[i]);
    sum_f32(op, wide.data(), count);
    for (size_t i = 0; i < count; ++i) data[i] = kernels::f32_to_bf16(wide[i]);
  }
  end(op);
}

// out: [size][bytes_per_rank]. Each step forwards the block received in the previous step to the right.
void GlooCommunicator::allgather(const void* in, size_t bytes_per_rank, void* out) {
  Op op = begin("allgather");
  auto* o = static_cast<uint8_t*>(out);
  if (o + size_t(rank_) * bytes_per_rank != in)
    std::memmove(o + size_t(rank_) * bytes_per_rank, in, bytes_per_rank);
  const int n = size_;
  if (shm_ && n > 1 && bytes_per_rank > 0) {
    try {
      shm_->allgather(o + size_t(rank_) * bytes_per_rank, bytes_per_rank, o, op.deadline, group_suffix());
    } catch (const std::runtime_error& e) {
      fail(op, e.what());
    }
    stats_.bytes_sent += bytes_per_rank;
    stats_.bytes_received += bytes_per_rank * size_t(n - 1);
    return end(op);
  }
  const int right = mod(rank_ + 1, n), left = mod(rank_ - 1, n);
  for (int s = 0; s < n - 1; ++s) {
    int send_block = mod(rank_ - s, n), recv_block = mod(rank_ - s - 1, n);
    exchange(op, kSlotAllgather, o + size_t(send_block) * bytes_per_rank, bytes_per_rank, right,
             o + size_t(recv_block) * bytes_per_rank, bytes_per_rank, left);
  }
  end(op);
}

// Pairwise: step s sends to rank + s and receives from rank - s (s = 1 .. size - 1), so every pair meets once.
void GlooCommunicator::alltoallv(const void* send, const size_t* send_bytes, void* recv, const size_t* recv_bytes) {
  Op op = begin("alltoallv");
  const int n = size_;
  std::vector<size_t> so(size_t(n) + 1, 0), ro(size_t(n) + 1, 0);  // byte offsets of each rank's block
  for (int q = 0; q < n; ++q) so[size_t(q) + 1] = so[size_t(q)] + send_bytes[q], ro[size_t(q) + 1] = ro[size_t(q)] + recv_bytes[q];
  const auto* s = static_cast<const uint8_t*>(send);
  auto* r = static_cast<uint8_t*>(recv);
  if (send_bytes[rank_] != recv_bytes[rank_])
    fail(op, "alltoallv: this rank sends itself " + std::to_string(send_bytes[rank_]) + " bytes but expects " +
                 std::to_string(recv_bytes[rank_]));
  if (send_bytes[rank_] > 0)  // the buffers may be null when this rank keeps nothing (UBSan: memcpy of null)
    std::memcpy(r + ro[size_t(rank_)], s + so[size_t(rank_)], send_bytes[rank_]);
  for (int step = 1; step < n; ++step) {
    const int dst = mod(rank_ + step, n), src = mod(rank_ - step, n);
    exchange(op, kSlotAlltoall, s + so[size_t(dst)], send_bytes[dst], dst, r + ro[size_t(src)], recv_bytes[src], src);
  }
  end(op);
}

}  // namespace hpcinfer::gloo_comm
