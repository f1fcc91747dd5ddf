// Progress of a long run, as plain lines (they go to the rank's log, so no terminal tricks):
//   "progress: 12/100 requests, 1536 tokens, 41.3 tok/s, 3.1 req/s, ETA 28 s"
// at most one line per `interval_s`, and always one for the last request. ETA = remaining requests / requests per
// second so far (requests vary in length; that is the honest estimate without knowing the future ones).
#pragma once

#include <cstdio>
#include <functional>
#include <string>

namespace hpcinfer {

class ProgressReporter {
 public:
  // now(): seconds on any monotonic clock; sink(line) prints one line.
  ProgressReporter(int total_requests, double interval_s, std::function<double()> now,
                   std::function<void(const std::string&)> sink)
      : total_(total_requests), interval_(interval_s), now_(std::move(now)), sink_(std::move(sink)), start_(now_()),
        last_(start_) {}

  void request_done(size_t generated_tokens) {
    ++done_;
    tokens_ += generated_tokens;
    const double t = now_();
    if (done_ < total_ && t - last_ < interval_) return;
    last_ = t;
    const double el = std::max(t - start_, 1e-9), rps = done_ / el;
    char buf[200];
    std::snprintf(buf, sizeof buf, "progress: %d/%d requests, %zu tokens, %.1f tok/s, %.2f req/s, ETA %.0f s", done_,
                  total_, tokens_, double(tokens_) / el, rps, done_ >= total_ ? 0.0 : double(total_ - done_) / rps);
    sink_(buf);
  }

 private:
  int total_, done_ = 0;
  double interval_;
  std::function<double()> now_;
  std::function<void(const std::string&)> sink_;
  double start_, last_;
  size_t tokens_ = 0;
};

}  // namespace hpcinfer
