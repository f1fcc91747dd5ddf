// Next-token sampling from logits: greedy (temperature 0), or temperature with top-k, top-p (nucleus) and min-p
// filters, from a per-request random stream (seeded, so runs are reproducible).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace hpcinfer {

struct SamplingParams {
  float temperature = 0.0f;
  int top_k = 0;        // 0 = off
  float top_p = 1.0f;   // 1 = off
  float min_p = 0.0f;   // 0 = off
};

class Sampler {
 public:
  Sampler(const SamplingParams& p, uint64_t seed) : p_(p), rng_(seed) {}
  // logits[vocab] (not modified).
  int sample(const float* logits, int64_t vocab);

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int>> cand_;  // scratch: (probability, token)
};

}  // namespace hpcinfer
