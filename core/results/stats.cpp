#include "core/results/stats.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace hpcinfer {

double percentile(std::vector<double> v, double p) {
  if (v.empty()) throw std::invalid_argument("percentile of an empty sample");
  std::sort(v.begin(), v.end());
  const double rank = std::clamp(p, 0.0, 100.0) / 100.0 * double(v.size() - 1);
  const size_t lo = size_t(std::floor(rank)), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (rank - double(lo)) * (v[hi] - v[lo]);
}

nlohmann::json describe(const std::vector<double>& v) {
  nlohmann::json j{{"n", v.size()}};
  for (const char* k : {"mean", "std", "min", "p50", "p90", "p99", "max"}) j[k] = nullptr;
  if (v.empty()) return j;
  double sum = 0;
  for (double x : v) sum += x;
  const double mean = sum / double(v.size());
  double ss = 0;
  for (double x : v) ss += (x - mean) * (x - mean);
  j["mean"] = mean;
  j["std"] = v.size() > 1 ? std::sqrt(ss / double(v.size() - 1)) : 0.0;
  j["min"] = *std::min_element(v.begin(), v.end());
  j["p50"] = percentile(v, 50);
  j["p90"] = percentile(v, 90);
  j["p99"] = percentile(v, 99);
  j["max"] = *std::max_element(v.begin(), v.end());
  return j;
}

}  // namespace hpcinfer
