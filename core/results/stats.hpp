// Descriptive statistics of a sample, as used in summary.json: n, mean, std, min, p50, p90, p99, max.
// std is the sample standard deviation (n - 1 in the denominator; 0 for n = 1). Percentiles interpolate linearly
// between the two nearest order statistics (rank p/100 x (n - 1), NumPy's default "linear" method). An empty
// sample gives n = 0 and null everywhere else.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

namespace hpcinfer {

double percentile(std::vector<double> v, double p);  // p in [0, 100]; v non-empty
nlohmann::json describe(const std::vector<double>& v);

}  // namespace hpcinfer
