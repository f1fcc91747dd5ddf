// Per-token log-probabilities for completions (outputs.logprobs: K): the top-K (token, logprob) of the next-token
// distribution each generated token was drawn from, and the logprob of the token itself.
//
// The distribution is the model's: log-softmax of the f32 logits at temperature 1, before top-k / top-p / min-p
// filtering (so greedy and sampled runs report the same numbers for the same logits). Computed in float64: the
// max and the log-sum-exp over the whole vocabulary, so the only error left is the logits' own.
#pragma once

#include <cstdint>
#include <utility>
#include <optional>
#include <vector>

namespace hpcinfer {

struct TokenLogprobs {
  int token = -1;                         // the generated token
  double logprob = 0;                     // its log-probability
  std::vector<std::pair<int, double>> top;  // the k most likely tokens, most likely first (ties: lower id first)
};

// logits[vocab]; k is clamped to vocab.
TokenLogprobs token_logprobs(const float* logits, int64_t vocab, int token, int k);

// The same from a row's `count` largest logits (any order) with its max and sum of exp(l - max) at temperature 1
// (Backend::sampling_candidates: what a device sends instead of the row; the sum is of f32 terms, so the numbers
// agree with token_logprobs to about 1e-7), or nullopt when the token or the top k are not all among them.
std::optional<TokenLogprobs> token_logprobs_from_candidates(const float* cand_logits, const int* cand_ids,
                                                            int64_t count, float max, double sum, int64_t vocab,
                                                            int token, int k);

}  // namespace hpcinfer
