// How the OpenMP threads of ranks that share one host's cores wait (hpcinfer launch's ranks, and mpirun's when launch
// starts it): one place for the rule, applied in the launcher before it starts ranks (core/cli/local_ranks.hpp).
//
// A rank whose peers work (pp: the other stage; tp: the slower shard) has idle OpenMP threads. libgomp's default lets
// them spin 300,000 rounds (about 3 ms) before sleeping: on cores the working rank needs. OMP_WAIT_POLICY=passive
// alone sleeps at once, and then every parallel region of the working rank pays a futex wake-up (-5% in one process).
// GOMP_SPINCOUNT=2000 spins about 20 us and sleeps: pp=2 on tinyllama +5-8% over passive (10000, 0.1 ms, gave the
// same there but cost stories260K's pp=2 15%, its stages being that short; bench/RESULTS.md, issue 19). A user's own
// OMP_WAIT_POLICY or GOMP_SPINCOUNT is kept as it is.
#pragma once

#include <cstdlib>

namespace hpcinfer {

inline void set_shared_cores_wait_policy() {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  setenv("OMP_WAIT_POLICY", "passive", 1);  // OpenMP runtimes other than libgomp: do not spin
  setenv("GOMP_SPINCOUNT", "2000", 1);      // libgomp: an explicit spin count takes precedence over the policy
}

}  // namespace hpcinfer
