// Shared by test_comm's forked gloo ranks and its mpirun-launched mpi workers: the collective checks every
// Communicator must pass, returning "" or a description of the first mismatch (no gtest inside children).
#pragma once

#include <algorithm>
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
  // alltoallv: rank r sends q + r + 1 bytes to rank q,
  // byte i = 7r + 3q + i; rank 0 sends nothing to the last rank (a zero-length block).
  {
    auto bytes = [n](int from, int to) { return from == 0 && to == n - 1 && n > 1 ? size_t(0) : size_t(to + from + 1); };
    std::vector<size_t> sb(static_cast<size_t>(n)), rb(static_cast<size_t>(n));
    std::vector<uint8_t> send, recv;
    for (int q = 0; q < n; ++q) {
      sb[size_t(q)] = bytes(r, q), rb[size_t(q)] = bytes(q, r);
      for (size_t i = 0; i < sb[size_t(q)]; ++i) send.push_back(uint8_t(7 * r + 3 * q + int(i)));
    }
    size_t total = 0;
    for (size_t x : rb) total += x;
    recv.assign(total, 0xEE);
    c.alltoallv(send.data(), sb.data(), recv.data(), rb.data());
    size_t at = 0;
    for (int q = 0; q < n; ++q)
      for (size_t i = 0; i < rb[size_t(q)]; ++i, ++at)
        COMM_CHECK(recv[at] == uint8_t(7 * q + 3 * r + int(i)), "alltoallv from rank " << q << " byte " << i);
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

// Buffered send (pairs (0,1), (2,3)): both ranks send 3 messages of 8 MiB FIRST and only then receive the peer's
// (rendezvous sends deadlock here), the send buffer is overwritten right after each send (send copied it), then
// 50 small messages with one tag must arrive in order.
inline std::string check_buffered_sends(Communicator& c) {
  const int r = c.rank(), n = c.size();
  const int peer = (r % 2 == 0) ? r + 1 : r - 1;
  if (peer >= n) return "";
  const size_t big = size_t(8) << 20;
  auto pattern = [](int from, int k, size_t i) { return uint8_t((i * 131 + size_t(k) * 17 + size_t(from) * 59) >> 3); };
  std::vector<uint8_t> buf(big);  // [big] bytes, reused for every send
  for (int k = 0; k < 3; ++k) {
    for (size_t i = 0; i < big; ++i) buf[i] = pattern(r, k, i);
    c.send(buf.data(), big, peer, 20);
    std::fill(buf.begin(), buf.end(), uint8_t(0xEE));  // send() must have taken its copy already
  }
  for (int k = 0; k < 3; ++k) {
    c.recv(buf.data(), big, peer, 20);
    for (size_t i = 0; i < big; ++i)
      COMM_CHECK(buf[i] == pattern(peer, k, i), "8 MiB message " << k << " from rank " << peer << " byte " << i);
  }
  for (int32_t i = 0; i < 50; ++i) {
    int32_t v = r * 100000 + i;
    c.send(&v, sizeof(v), peer, 21);
  }
  for (int32_t i = 0; i < 50; ++i) {
    int32_t v = -1;
    c.recv(&v, sizeof(v), peer, 21);
    COMM_CHECK(v == peer * 100000 + i, "small message " << i << " from rank " << peer << " arrived as " << v);
  }
  c.barrier();
  return "";
}

// Group communicators: `group` holds world ranks {2g, 2g+1} (group rank = world rank % 2). An allreduce inside the
// group gives the group's sum, the world communicator still gives the world's sum, and they interleave.
inline std::string check_groups(Communicator& world, Communicator& group) {
  Communicator& c = world;  // for COMM_CHECK
  const int w = world.rank(), n = world.size();
  COMM_CHECK(group.rank() == w % 2 && group.size() == 2, "group rank/size " << group.rank() << "/" << group.size());
  for (int round = 0; round < 2; ++round) {
    std::vector<float> g(33, float(w + 1)), a(17, float(w + 1));
    group.allreduce_sum_f32(g.data(), g.size());
    world.allreduce_sum_f32(a.data(), a.size());
    const float want_g = float((w - w % 2) + 1 + (w - w % 2) + 2), want_a = float(n * (n + 1) / 2);
    for (float x : g) COMM_CHECK(x == want_g, "group allreduce gave " << x << ", want " << want_g);
    for (float x : a) COMM_CHECK(x == want_a, "world allreduce gave " << x << ", want " << want_a);
  }
  int32_t mine = w, theirs = -1;  // group point to point: peer numbers are group ranks
  group.send(&mine, sizeof(mine), 1 - group.rank(), 7);
  group.recv(&theirs, sizeof(theirs), 1 - group.rank(), 7);
  COMM_CHECK(theirs == (w ^ 1), "group peer sent world rank " << theirs);
  group.barrier();
  world.barrier();
  return "";
}

#undef COMM_CHECK

}  // namespace hpcinfer::test
