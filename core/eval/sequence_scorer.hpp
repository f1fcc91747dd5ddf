// Log-likelihood of token sequences under a model: the building block of the evaluation suites (perplexity,
// multiple choice). One forward pass scores up to n_slots sequences at once, each in its own KV-cache slot from
// position 0; the logits are log-softmaxed in float64.
#pragma once

#include <vector>

#include "core/runtime/rank_session.hpp"

namespace hpcinfer::eval {

struct ScoredSequence {
  std::vector<int> ids;  // the whole sequence, context included
  int first_target = 1;  // score ids[first_target .. end) (each given every id before it); >= 1
};

class SequenceScorer {
 public:
  // `session` must be open (open_rank with these n_slots) in a world of one: embedding, every layer and the head.
  SequenceScorer(RankSession& session, int n_slots);

  // For each sequence s: logprob[t - first_target] = log P(ids[t] | ids[0..t)), t in [first_target, ids.size()).
  // At most n_slots sequences, each at most max_ctx ids (the session's sizes); throws std::invalid_argument otherwise.
  std::vector<std::vector<double>> score(const std::vector<ScoredSequence>& seqs);

  int n_slots() const { return n_slots_; }
  int max_ctx() const { return max_ctx_; }
  long long tokens_forwarded() const { return tokens_forwarded_; }  // every input token of every pass

 private:
  RankSession& s_;
  int n_slots_, max_ctx_;
  long long tokens_forwarded_ = 0;
};

// log_softmax(logits)[target] in float64.
double token_logprob(const float* logits, long long vocab, int target);

}  // namespace hpcinfer::eval
