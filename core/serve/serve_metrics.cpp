#include "core/serve/serve_metrics.hpp"

#include <cstdio>

namespace hpcinfer::serve {
namespace {
std::string num(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.12g", v);
  return b;
}
// vLLM's buckets for these three histograms (seconds).
const std::vector<double> kTtft{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0};
const std::vector<double> kTpot{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0};
const std::vector<double> kE2e{0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0};
}  // namespace

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++total_;
}

std::string Histogram::text(const std::string& name, const std::string& help) const {
  std::string out = "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  long cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    out += name + "_bucket{le=\"" + num(bounds_[i]) + "\"} " + std::to_string(cum) + "\n";
  }
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(total_) + "\n";
  out += name + "_sum " + num(sum_) + "\n" + name + "_count " + std::to_string(total_) + "\n";
  return out;
}

ServeMetrics::ServeMetrics(int slots) : slots_(slots), ttft_(kTtft), tpot_(kTpot), e2e_(kE2e) {}

void ServeMetrics::request_done(const std::string& finish_reason, int prompt_tokens, int generated, double ttft_s,
                                double e2e_s) {
  std::lock_guard<std::mutex> lock(mu_);
  ++success_[finish_reason];
  prompt_tokens_ += prompt_tokens;
  generation_tokens_ += generated;
  if (generated > 0) ttft_.observe(ttft_s);
  if (generated > 1) tpot_.observe((e2e_s - ttft_s) / double(generated - 1));
  e2e_.observe(e2e_s);
}

void ServeMetrics::request_failed(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++failure_[reason];
}

void ServeMetrics::set_load(int running, int waiting) {
  std::lock_guard<std::mutex> lock(mu_);
  running_ = running;
  waiting_ = waiting;
}

void ServeMetrics::dispatched(int replica, int requests) {
  std::lock_guard<std::mutex> lock(mu_);
  dispatched_[replica] += requests;
}

std::string ServeMetrics::text() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  auto gauge = [&](const char* name, const char* help, double v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n" + name + " " + num(v) + "\n";
  };
  auto counter = [&](const char* name, const char* help, double v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name + " " + num(v) + "\n";
  };
  gauge("hpcinfer:num_requests_running", "Requests in the engine's batch slots.", running_);
  gauge("hpcinfer:num_requests_waiting", "Requests queued for a slot.", waiting_);
  gauge("hpcinfer:kv_cache_usage_perc", "KV-cache slots in use, 1 = all.", slots_ > 0 ? double(running_) / slots_ : 0.0);
  counter("hpcinfer:prompt_tokens_total", "Prompt tokens of finished requests.", double(prompt_tokens_));
  counter("hpcinfer:generation_tokens_total", "Generated tokens of finished requests.", double(generation_tokens_));
  out += "# HELP hpcinfer:request_success_total Finished requests by finish reason.\n"
         "# TYPE hpcinfer:request_success_total counter\n";
  for (const char* r : {"stop", "length"})
    out += std::string("hpcinfer:request_success_total{finished_reason=\"") + r + "\"} " +
           std::to_string(success_.count(r) ? success_.at(r) : 0) + "\n";
  out += "# HELP hpcinfer:request_failure_total Requests that ended without a result, by reason.\n"
         "# TYPE hpcinfer:request_failure_total counter\n";
  for (const char* r : {"cancelled", "timeout", "rejected", "error"})
    out += std::string("hpcinfer:request_failure_total{reason=\"") + r + "\"} " +
           std::to_string(failure_.count(r) ? failure_.at(r) : 0) + "\n";
  if (!dispatched_.empty()) {
    out += "# HELP hpcinfer:replica_requests_total Requests the front sent to each data-parallel replica.\n"
           "# TYPE hpcinfer:replica_requests_total counter\n";
    for (const auto& [r, n] : dispatched_)
      out += "hpcinfer:replica_requests_total{replica=\"" + std::to_string(r) + "\"} " + std::to_string(n) + "\n";
  }
  out += ttft_.text("hpcinfer:time_to_first_token_seconds", "Arrival to first generated token.");
  out += tpot_.text("hpcinfer:time_per_output_token_seconds", "Mean time per generated token after the first.");
  out += e2e_.text("hpcinfer:e2e_request_latency_seconds", "Arrival to the last token.");
  return out;
}

}  // namespace hpcinfer::serve
