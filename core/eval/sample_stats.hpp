// Summary statistics of a few timing trials (the infer sweep): mean, sample standard deviation, min, max and
// percentiles by linear interpolation between order statistics (p50 of {1,2,3,4} = 2.5).
#pragma once

#include <vector>

namespace hpcinfer::eval {

struct SampleStats {
  int n = 0;
  double mean = 0, stddev = 0, min = 0, max = 0, p50 = 0, p90 = 0, p99 = 0;
};

// q in [0, 1]; an empty sample gives 0.
double percentile(std::vector<double> v, double q);
SampleStats summarize(const std::vector<double>& v);

}  // namespace hpcinfer::eval
