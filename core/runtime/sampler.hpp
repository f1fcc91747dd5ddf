// Next-token sampling from logits: greedy (temperature 0), or temperature with top-k, top-p (nucleus) and min-p
// filters, from a per-request random stream (seeded, so runs are reproducible).
//
// One rule, two ways in: sample() takes a whole row of logits on the host; sample_candidates() takes the row's
// largest logits with the row's max and softmax denominator (Backend::sampling_candidates: a device sends only
// those) and gives the same token whenever the filters keep no more than those candidates, else -1 (the caller then
// brings the whole row). Either way the probabilities are weight(logit) / sum, sorted by probability descending and
// token id ascending, then cut by top-k, min-p and top-p, and one uniform draw picks from what is left.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
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
  const SamplingParams& params() const { return p_; }
  // logits[vocab] (not modified).
  int sample(const float* logits, int64_t vocab);
  // The `count` largest logits of a row of `vocab` (any order), its max and sum of weight(): the token, or -1 when
  // the filters keep more candidates than were given (nothing is drawn then). temperature > 0 only.
  int sample_candidates(const float* cand_logits, const int* cand_ids, int64_t count, float max, double sum,
                        int64_t vocab);
  // exp((logit - max) / temperature): the unnormalised probability, the same for every way in.
  static float weight(float logit, float max, float temperature);

 private:
  // cand_ holds (probability, id) sorted; `complete`: it is the whole vocabulary. Returns -1 as above.
  int filter_and_draw(bool complete);
  SamplingParams p_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int>> cand_;  // scratch: (probability, token)
};

}  // namespace hpcinfer
