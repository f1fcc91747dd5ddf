// Timeline spans of one rank's engine (compute, send, receive wait), for trace.json in the results directory.
//
// Cheap and bounded: a span is 40 bytes appended to a vector (the engine already reads the clock around every
// span it times for its counters), and at most `cap` spans are kept (default kDefaultCap = 65536, 2.5 MiB); later
// spans are only counted in dropped(), so a long run keeps its first `cap` spans and says how many it lost.
// Times are seconds since the engine's epoch (PipelineEngine::run, entered right after a world barrier, so the
// ranks' epochs agree to within one barrier's exit skew).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hpcinfer {

struct Span {
  const char* name;    // a string literal: "compute", "head", "send", "recv_wait"
  double start, end;   // seconds since the epoch
  int32_t group;       // micro-batch group, -1 when none
  int32_t tokens;      // tokens in the batch (rows of the activations), -1 when none
  double allreduce;    // seconds of tp all-reduces inside a compute span (summed, not one span each: a layer has two)
};

class SpanLog {
 public:
  static constexpr size_t kDefaultCap = 65536;
  explicit SpanLog(size_t cap = kDefaultCap) : cap_(cap) {}
  void add(const char* name, double start, double end, int group = -1, int tokens = -1, double allreduce = 0) {
    if (spans_.size() >= cap_) {
      ++dropped_;
      return;
    }
    spans_.push_back({name, start, end, group, tokens, allreduce});
  }
  void clear() {
    spans_.clear();
    dropped_ = 0;
  }
  const std::vector<Span>& spans() const { return spans_; }
  uint64_t dropped() const { return dropped_; }
  size_t cap() const { return cap_; }

 private:
  size_t cap_;
  std::vector<Span> spans_;
  uint64_t dropped_ = 0;
};

}  // namespace hpcinfer
