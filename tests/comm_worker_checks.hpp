// Shared by test_comm's forked gloo ranks and its mpirun-launched mpi workers: the collective checks every
// Communicator must pass, returning "" or a description of the first mismatch (no gtest inside children).
#pragma once

#include <cmath>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "hpcinfer/communicator.hpp"
#include "kernels/cpu/convert.hpp"

namespace hpcinfer::test {

#define COMM_CHECK(cond, what)                                                          \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::ostringstream os_;                                                           \
      os_ << "rank " << c.rank() << ": " << what << " [" #cond "]";                     \
      return os_.str();                                                                 \
    }                                                                                   \
  } while (0)

inline std::string check_collectives(Communicator& c) {
  const int r = c.rank(), n = c.size();
  // Point to point with two tags between pairs (0,1), (2,3): even sends first, odd receives first.
  const int peer = (r % 2 == 0) ? r + 1 : r - 1;
  if (peer < n) {
    std::vector<int32_t> a(100), b(7), ga(100), gb(7);
    for (int i = 0; i < 100; ++i) a[i] = r * 1000 + i;
    for (int i = 0; i < 7; ++i) b[i] = -r - i;
    auto sendboth = [&] { c.send(a.data(), 400, peer, 5); c.send(b.data(), 28, peer, 6); };
    auto recvboth = [&] { c.recv(ga.data(), 400, peer, 5); c.recv(gb.data(), 28, peer, 6); };
    if (r % 2 == 0) { sendboth(); recvboth(); } else { recvboth(); sendboth(); }
    for (int i = 0; i < 100; ++i) COMM_CHECK(ga[i] == peer * 1000 + i, "tag 5 payload from rank " << peer << " at " << i);
    for (int i = 0; i < 7; ++i) COMM_CHECK(gb[i] == -peer - i, "tag 6 payload from rank " << peer << " at " << i);
  }
  // allreduce f32 on integers (exact), a count not divisible by n, and a count smaller than n.
  for (size_t count : {size_t(1003), size_t(1)}) {
    std::vector<float> v(count);
    for (size_t i = 0; i < count; ++i) v[i] = float(int((r + 1) * i % 97) - r);
    c.allreduce_sum_f32(v.data(), count);
    for (size_t i = 0; i < count; ++i) {
      float want = 0;
      for (int q = 0; q < n; ++q) want += float(int((q + 1) * i % 97) - q);
      COMM_CHECK(v[i] == want, "allreduce_f32[" << i << "] = " << v[i] << ", want " << want);
    }
  }
  // allreduce bf16: f32 accumulation, one rounding at the end (allow 1 ulp of bf16 for summation order).
  {
    const size_t count = 777;
    auto input = [](int q, size_t i) { return kernels::f32_to_bf16(0.013f * float(i % 50) * float(q + 1) - 0.3f * q); };
    std::vector<uint16_t> v(count);
    for (size_t i = 0; i < count; ++i) v[i] = input(r, i);
    c.allreduce_sum_bf16(v.data(), count);
    for (size_t i = 0; i < count; ++i) {
      float want = 0;
      for (int q = 0; q < n; ++q) want += kernels::bf16_to_f32(input(q, i));
      uint16_t w = kernels::f32_to_bf16(want);
      COMM_CHECK(std::abs(int(v[i]) - int(w)) <= 1, "allreduce_bf16[" << i << "] = " << kernels::bf16_to_f32(v[i])
                                                                       << ", want " << kernels::bf16_to_f32(w));
    }
  }
  // allgather: 24 bytes per rank.
  {
    std::vector<uint8_t> in(24), out(24 * n);
    for (int i = 0; i < 24; ++i) in[i] = uint8_t(r * 31 + i);
    c.allgather(in.data(), 24, out.data());
    for (int q = 0; q < n; ++q)
      for (int i = 0; i < 24; ++i)
        COMM_CHECK(out[q * 24 + i] == uint8_t(q * 31 + i), "allgather block " << q << " byte " << i);
  }
  // broadcast from the last rank.
  {
    std::vector<uint32_t> buf(1000, 0);
    if (r == n - 1)
      for (int i = 0; i < 1000; ++i) buf[i] = uint32_t(i * 3 + 11);
    c.broadcast(buf.data(), 4000, n - 1);
    for (int i = 0; i < 1000; ++i) COMM_CHECK(buf[i] == uint32_t(i * 3 + 11), "broadcast element " << i);
  }
  c.barrier();
  CommStats s = c.stats();
  COMM_CHECK(n == 1 || (s.bytes_sent > 0 && s.bytes_received > 0), "stats count no bytes");
  COMM_CHECK(s.calls >= 6, "stats count " << s.calls << " calls");
  return "";
}

#undef COMM_CHECK

}  // namespace hpcinfer::test
