// The server's Prometheus metrics (GET /metrics, text format 0.0.4), named as vLLM names its own with the prefix
// "hpcinfer:" (vLLM: "vllm:"), so dashboards built for it read these with one substitution:
//   hpcinfer:num_requests_running / _waiting          gauges (requests in the engine's slots / in the queue)
//   hpcinfer:kv_cache_usage_perc                       gauge, slots in use / slots (0..1)
//   hpcinfer:prompt_tokens_total, generation_tokens_total, request_success_total{finished_reason}, request_failure_total{reason}
//   hpcinfer:replica_requests_total{replica}          counter, the data-parallel front's dispatches
//   hpcinfer:time_to_first_token_seconds, time_per_output_token_seconds, e2e_request_latency_seconds   histograms
// Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace hpcinfer::serve {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double v);
  // Prometheus lines: name_bucket{le=...} (cumulative), name_sum, name_count.
  std::string text(const std::string& name, const std::string& help) const;
  long count() const { return total_; }

 private:
  std::vector<double> bounds_;
  std::vector<long> counts_;  // [bounds + 1]: counts_[i] = observations <= bounds_[i] (not cumulative), last: +Inf
  double sum_ = 0;
  long total_ = 0;
};

class ServeMetrics {
 public:
  explicit ServeMetrics(int slots);
  void request_done(const std::string& finish_reason, int prompt_tokens, int generated, double ttft_s, double e2e_s);
  void request_failed(const std::string& reason);  // cancelled, timeout, rejected
  void set_load(int running, int waiting);
  void dispatched(int replica, int requests);  // the data-parallel front: hpcinfer:replica_requests_total{replica}
  std::string text() const;

 private:
  mutable std::mutex mu_;
  int slots_;
  int running_ = 0, waiting_ = 0;
  long prompt_tokens_ = 0, generation_tokens_ = 0;
  std::map<std::string, long> success_, failure_;
  std::map<int, long> dispatched_;
  Histogram ttft_, tpot_, e2e_;
};

}  // namespace hpcinfer::serve
