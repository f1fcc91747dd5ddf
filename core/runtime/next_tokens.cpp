#include "core/runtime/next_tokens.hpp"

#include <algorithm>

namespace hpcinfer {
namespace {

// Each row's kCandidates largest logits at one temperature, with the row's max and softmax sum (host memory).
struct Candidates {
  int64_t count = 0;
  std::vector<float> max, logits;
  std::vector<double> sum;
  std::vector<int> ids;
  Candidates(ModelStage& stage, const std::vector<int>& rows, float temperature)
      : count(std::min<int64_t>(stage.desc().vocab, kCandidates)),
        max(rows.size()),
        logits(rows.size() * size_t(count)),
        sum(rows.size()),
        ids(rows.size() * size_t(count)) {
    const std::vector<float> temps(rows.size(), temperature);
    stage.head_candidates(rows, temps.data(), count, max.data(), sum.data(), logits.data(), ids.data());
  }
  const float* row_logits(size_t i) const { return logits.data() + i * size_t(count); }
  const int* row_ids(size_t i) const { return ids.data() + i * size_t(count); }
};

}  // namespace

NextTokens next_tokens_on_backend(ModelStage& stage, const std::vector<int>& rows,
                                  const std::vector<Sampler*>& samplers, int logprobs) {
  const size_t m = rows.size();
  const int64_t V = stage.desc().vocab;
  NextTokens out{std::vector<int>(m, -1), std::vector<std::optional<TokenLogprobs>>(logprobs > 0 ? m : 0)};
  if (m == 0) return out;
  const SamplingParams& p = samplers[0]->params();
  const bool greedy = p.temperature <= 0.0f;
  if (greedy && logprobs == 0) {
    stage.head_argmax(rows, out.tokens.data());
    return out;
  }
  // Temperature 1 serves the logprobs and greedy's argmax; a sampling temperature other than 1 needs its own.
  std::optional<Candidates> at_one, at_t;
  if (logprobs > 0 || greedy || p.temperature == 1.0f) at_one.emplace(stage, rows, 1.0f);
  if (!greedy && p.temperature != 1.0f) at_t.emplace(stage, rows, p.temperature);
  const Candidates& draw = at_t ? *at_t : *at_one;
  std::vector<size_t> whole;  // rows the candidates do not settle
  for (size_t i = 0; i < m; ++i) {
    const float* cl = draw.row_logits(i);
    const int* ci = draw.row_ids(i);
    if (greedy) {  // the largest logit, the lowest id on ties: the argmax
      int64_t best = 0;
      for (int64_t j = 1; j < draw.count; ++j)
        if (cl[j] > cl[best] || (cl[j] == cl[best] && ci[j] < ci[best])) best = j;
      out.tokens[i] = ci[best];
    } else {
      out.tokens[i] = samplers[i]->sample_candidates(cl, ci, draw.count, draw.max[i], draw.sum[i], V);
    }
    if (out.tokens[i] >= 0 && logprobs > 0)
      out.logprobs[i] = token_logprobs_from_candidates(at_one->row_logits(i), at_one->row_ids(i), at_one->count,
                                                       at_one->max[i], at_one->sum[i], V, out.tokens[i], logprobs);
    if (out.tokens[i] < 0 || (logprobs > 0 && !out.logprobs[i])) whole.push_back(i);
  }
  if (whole.empty()) return out;
  std::vector<int> again;
  for (size_t i : whole) again.push_back(rows[i]);
  std::vector<float> row_logits(again.size() * size_t(V));
  stage.head(again, row_logits.data());
  for (size_t j = 0; j < whole.size(); ++j) {
    const size_t i = whole[j];
    const float* r = row_logits.data() + j * size_t(V);
    if (out.tokens[i] < 0) out.tokens[i] = samplers[i]->sample(r, V);
    if (logprobs > 0) out.logprobs[i] = token_logprobs(r, V, out.tokens[i], logprobs);
  }
  return out;
}

}  // namespace hpcinfer
