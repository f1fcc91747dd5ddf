// Puts every rank's engine clock on rank 0's, for trace.json.
//
// The world barrier before the engine gives each rank a common start only to within the barrier's exit skew, which
// was 1-4 ms with gloo on this 2-core machine under load (30 us with mpi) - more than a forward pass of a small model.
// So each rank also measures the offset of its steady clock to rank 0's before the engine starts:
//   - ranks on the same running kernel as rank 0 (same /proc/sys/kernel/random/boot_id) read the same
//     CLOCK_MONOTONIC (std::chrono::steady_clock): the offset is exactly 0 ("shared");
//   - others ping-pong with rank 0 (Cristian's algorithm): send t1, rank 0 answers its time t0, receive at t2;
//     offset = t0 - (t1 + t2) / 2 from the round with the smallest round trip, whose half bounds the error
//     ("ping-pong").
// Cost: 8 round trips per rank, once per run, before the engine's clock starts. HPCINFER_CLOCK_PINGPONG=1 (a test
// hook) uses the ping-pong even for a shared clock, where the true offset is known to be 0.
#pragma once

#include <string>

#include "hpcinfer/communicator.hpp"

namespace hpcinfer {

constexpr uint32_t kTagClock = 4;

struct ClockOffset {
  double offset_s = 0;  // rank 0's steady clock minus this rank's
  double rtt_s = 0;     // the round trip of the estimate (0 when shared or on rank 0)
  std::string method = "shared";  // "shared" (same kernel clock) or "ping-pong"
};

// Collective over the world: every rank calls it at the same point. comm may be null (world of one).
ClockOffset measure_clock_offset(Communicator* comm, int rank, int size, int rounds = 8);

// This kernel's boot id ("" when unreadable): equal ids share CLOCK_MONOTONIC.
std::string boot_id();

}  // namespace hpcinfer
