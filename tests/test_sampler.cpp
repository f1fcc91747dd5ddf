// The sampling rule's two ways in agree: from a whole row on the host (Sampler::sample) and from the row's largest
// logits as a backend sends them (Backend::sampling_candidates + Sampler::sample_candidates): the same tokens from the
// same seeds whenever the candidates settle the draw, and -1 (nothing drawn) when the filters reach past them.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "core/backend/cpu_backend.hpp"
#include "core/runtime/logprobs.hpp"
#include "core/runtime/sampler.hpp"
#include "support/test_support.hpp"

namespace hpcinfer {
namespace {

TEST(Sampler, CandidatesGiveTheWholeRowsTokens) {
  CpuBackend be(1);
  const int64_t V = 3001, C = 64, rows = 3;
  std::vector<float> logits = test::randn(size_t(rows * V), 7, 3.0f);
  logits[5] = logits[9];  // a tie
  struct Case {
    SamplingParams p;
    bool settled;  // the candidates always decide
  };
  const std::vector<Case> cases = {
      {{0.8f, 40, 1.0f, 0.0f}, true},    // top-k within the candidates
      {{1.0f, 0, 0.5f, 0.0f}, true},     // nucleus of a peaked row: a few tokens
      {{0.7f, 0, 1.0f, 0.05f}, true},    // min-p
      {{1.0f, 2000, 1.0f, 0.0f}, false}, // top-k beyond the candidates, nothing else cuts: the whole row
      {{5.0f, 0, 1.0f, 0.0f}, false},    // plain temperature: every token may come
  };
  std::vector<float> temps(static_cast<size_t>(rows)), mx(static_cast<size_t>(rows)), cl(static_cast<size_t>(rows * C));
  std::vector<double> sum(static_cast<size_t>(rows));
  std::vector<int> ci(static_cast<size_t>(rows * C));
  for (const Case& c : cases) {
    SCOPED_TRACE("T " + std::to_string(c.p.temperature) + " top_k " + std::to_string(c.p.top_k) + " top_p " +
                 std::to_string(c.p.top_p) + " min_p " + std::to_string(c.p.min_p));
    std::fill(temps.begin(), temps.end(), c.p.temperature);
    be.sampling_candidates(logits.data(), rows, V, temps.data(), C, mx.data(), sum.data(), cl.data(), ci.data());
    for (int64_t r = 0; r < rows; ++r) {
      Sampler whole(c.p, 100 + uint64_t(r)), cand(c.p, 100 + uint64_t(r));
      for (int draw = 0; draw < 20; ++draw) {
        const int want = whole.sample(logits.data() + r * V, V);
        int got = cand.sample_candidates(cl.data() + r * C, ci.data() + r * C, C, mx[size_t(r)], sum[size_t(r)], V);
        if (c.settled) {
          EXPECT_EQ(got, want) << "row " << r << " draw " << draw;
        } else {
          EXPECT_EQ(got, -1) << "row " << r;
          got = cand.sample(logits.data() + r * V, V);  // nothing was drawn: the streams stay in step
          EXPECT_EQ(got, want);
        }
      }
    }
  }
  // All of the vocabulary as candidates: always settled.
  SamplingParams p{2.0f, 0, 1.0f, 0.0f};
  std::vector<float> all_l(static_cast<size_t>(V));
  std::vector<int> all_i(static_cast<size_t>(V));
  float m = 0;
  double s = 0;
  be.sampling_candidates(logits.data(), 1, V, &p.temperature, V, &m, &s, all_l.data(), all_i.data());
  Sampler a(p, 9), b(p, 9);
  for (int d = 0; d < 20; ++d) EXPECT_EQ(b.sample_candidates(all_l.data(), all_i.data(), V, m, s, V), a.sample(logits.data(), V));
}

// Logprobs from the largest logits at temperature 1 (what a device sends) equal the whole row's within the f32 terms
// of the sum, and are refused when the token or the top k lie outside them.
TEST(Logprobs, FromCandidatesEqualTheWholeRows) {
  CpuBackend be(1);
  const int64_t V = 4001, C = 50;
  std::vector<float> logits = test::randn(static_cast<size_t>(V), 11, 2.0f);
  logits[7] = logits[8] = 9.0f;  // tied at the top
  const float one = 1.0f;
  float mx = 0;
  double sum = 0;
  std::vector<float> cl(static_cast<size_t>(C));
  std::vector<int> ci(static_cast<size_t>(C));
  be.sampling_candidates(logits.data(), 1, V, &one, C, &mx, &sum, cl.data(), ci.data());
  for (int token : {7, 8, ci[10]}) {
    const TokenLogprobs want = token_logprobs(logits.data(), V, token, 5);
    const auto got = token_logprobs_from_candidates(cl.data(), ci.data(), C, mx, sum, V, token, 5);
    ASSERT_TRUE(got.has_value()) << token;
    EXPECT_NEAR(got->logprob, want.logprob, 1e-6);
    ASSERT_EQ(got->top.size(), want.top.size());
    for (size_t i = 0; i < want.top.size(); ++i) {
      EXPECT_EQ(got->top[i].first, want.top[i].first) << i;
      EXPECT_NEAR(got->top[i].second, want.top[i].second, 1e-6);
    }
  }
  int outside = 0;
  while (std::find(ci.begin(), ci.end(), outside) != ci.end()) ++outside;
  EXPECT_FALSE(token_logprobs_from_candidates(cl.data(), ci.data(), C, mx, sum, V, outside, 5).has_value());
  EXPECT_FALSE(token_logprobs_from_candidates(cl.data(), ci.data(), C, mx, sum, V, 7, int(C) + 1).has_value());
}

}  // namespace
}  // namespace hpcinfer
