// ProgressReporter: rate-limited lines with the right counts, rate and ETA (a fake clock).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/runtime/progress.hpp"

TEST(Progress, PrintsAtMostOncePerIntervalAndAlwaysAtTheEnd) {
  double t = 0;
  std::vector<std::string> lines;
  hpcinfer::ProgressReporter p(4, 10.0, [&] { return t; }, [&](const std::string& l) { lines.push_back(l); });
  t = 2, p.request_done(10);   // 2 s < 10 s: quiet
  EXPECT_TRUE(lines.empty());
  t = 12, p.request_done(30);  // 12 s: a line; 2 of 4 done in 12 s -> 6 s per request, 2 left -> ETA 12 s
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "progress: 2/4 requests, 40 tokens, 3.3 tok/s, 0.17 req/s, ETA 12 s");
  t = 13, p.request_done(5);   // 1 s after the last line: quiet
  EXPECT_EQ(lines.size(), 1u);
  t = 14, p.request_done(5);   // the last request: always
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], "progress: 4/4 requests, 50 tokens, 3.6 tok/s, 0.29 req/s, ETA 0 s");
}
