#include "core/eval/sequence_scorer.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace hpcinfer::eval {

double token_logprob(const float* logits, long long vocab, int target) {
  double m = logits[0];
  for (long long i = 1; i < vocab; ++i) m = std::max(m, double(logits[i]));
  double sum = 0;
  for (long long i = 0; i < vocab; ++i) sum += std::exp(double(logits[i]) - m);
  return double(logits[target]) - m - std::log(sum);
}

SequenceScorer::SequenceScorer(RankSession& session, int n_slots)
    : s_(session), n_slots_(n_slots), max_ctx_(session.stage->max_ctx()) {
  const RankPlan& p = session.stage->plan();
  if (!p.has_embedding || !p.has_head)
    throw std::invalid_argument("SequenceScorer: the session must hold the whole model (a world of one)");
}

std::vector<std::vector<double>> SequenceScorer::score(const std::vector<ScoredSequence>& seqs) {
  if (int(seqs.size()) > n_slots_)
    throw std::invalid_argument("SequenceScorer: " + std::to_string(seqs.size()) + " sequences for " +
                                std::to_string(n_slots_) + " slots");
  const long long V = s_.model->desc().vocab;
  TokenBatch b;
  std::vector<int> rows;  // batch rows whose logits are needed: the ones that predict a target
  for (size_t q = 0; q < seqs.size(); ++q) {
    const ScoredSequence& sq = seqs[q];
    const int n = int(sq.ids.size());
    if (n > max_ctx_)
      throw std::invalid_argument("SequenceScorer: a sequence of " + std::to_string(n) + " tokens exceeds the " +
                                  std::to_string(max_ctx_) + "-token context");
    if (sq.first_target < 1 || sq.first_target > n)
      throw std::invalid_argument("SequenceScorer: first_target " + std::to_string(sq.first_target) +
                                  " outside [1, " + std::to_string(n) + "]");
    for (int i = 0; i < n; ++i) {
      if (i + 1 >= sq.first_target && i + 1 < n) rows.push_back(b.size());
      b.tokens.push_back(sq.ids[size_t(i)]);
      b.slot.push_back(int(q));
      b.pos.push_back(i);
    }
  }
  std::vector<std::vector<double>> out(seqs.size());
  if (b.size() == 0) return out;
  std::vector<float> logits(rows.size() * size_t(V));
  s_.stage->embed(b);
  s_.stage->forward_layers(b);
  if (!rows.empty()) s_.stage->head(rows, logits.data());
  tokens_forwarded_ += b.size();
  size_t r = 0;
  for (size_t q = 0; q < seqs.size(); ++q) {
    const ScoredSequence& sq = seqs[q];
    for (size_t t = size_t(sq.first_target); t < sq.ids.size(); ++t, ++r)
      out[q].push_back(token_logprob(logits.data() + r * size_t(V), V, sq.ids[t]));
  }
  return out;
}

}  // namespace hpcinfer::eval
