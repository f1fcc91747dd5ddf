#include "core/runtime/logprobs.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace hpcinfer {

TokenLogprobs token_logprobs(const float* logits, int64_t vocab, int token, int k) {
  if (vocab < 1 || token < 0 || token >= vocab)
    throw std::invalid_argument("logprobs: token " + std::to_string(token) + " outside a vocabulary of " +
                                std::to_string(vocab));
  double mx = logits[0];
  for (int64_t i = 1; i < vocab; ++i) mx = std::max(mx, double(logits[i]));
  double sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(double(logits[i]) - mx);
  const double lse = mx + std::log(sum);

  TokenLogprobs out;
  out.token = token;
  out.logprob = double(logits[token]) - lse;
  const size_t kk = size_t(std::clamp<int64_t>(k, 0, vocab));
  std::vector<int> ids(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) ids[size_t(i)] = int(i);
  std::partial_sort(ids.begin(), ids.begin() + std::ptrdiff_t(kk), ids.end(), [&](int a, int b) {
    return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
  });
  out.top.reserve(kk);
  for (size_t i = 0; i < kk; ++i) out.top.emplace_back(ids[i], double(logits[ids[i]]) - lse);
  return out;
}

std::optional<TokenLogprobs> token_logprobs_from_candidates(const float* cand_logits, const int* cand_ids,
                                                            int64_t count, float max, double sum, int64_t vocab,
                                                            int token, int k) {
  const int64_t kk = std::clamp<int64_t>(k, 0, vocab);
  if (kk > count || sum <= 0) return std::nullopt;
  const double lse = double(max) + std::log(sum);
  std::vector<int> order(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) order[size_t(i)] = int(i);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    return cand_logits[a] != cand_logits[b] ? cand_logits[a] > cand_logits[b] : cand_ids[a] < cand_ids[b];
  });
  TokenLogprobs out;
  out.token = token;
  bool found = false;
  for (int64_t i = 0; i < count; ++i)
    if (cand_ids[i] == token) {
      out.logprob = double(cand_logits[i]) - lse;
      found = true;
      break;
    }
  if (!found) return std::nullopt;
  for (int64_t i = 0; i < kk; ++i)
    out.top.emplace_back(cand_ids[order[size_t(i)]], double(cand_logits[order[size_t(i)]]) - lse);
  return out;
}

}  // namespace hpcinfer
