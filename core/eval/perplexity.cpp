#include "core/eval/perplexity.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>

namespace hpcinfer::eval {

std::vector<Window> plan_windows(long long n_tokens, int ctx, int stride) {
  if (ctx < 2) throw std::invalid_argument("perplexity: ctx must be at least 2, got " + std::to_string(ctx));
  if (stride < 1 || stride > ctx)
    throw std::invalid_argument("perplexity: stride must be in [1, ctx=" + std::to_string(ctx) + "], got " +
                                std::to_string(stride));
  std::vector<Window> w;
  long long scored_until = 1;  // the first token has no context: never scored
  for (long long begin = 0; scored_until < n_tokens; begin += stride) {
    const long long end = std::min(begin + ctx, n_tokens);
    w.push_back({begin, end, std::max(scored_until, begin + 1)});
    scored_until = end;
  }
  return w;
}

double PerplexityResult::perplexity() const { return std::exp(nll_mean()); }

PerplexityResult perplexity(SequenceScorer& scorer, const std::vector<int>& tokens, int ctx, int stride,
                            void (*progress)(int, int)) {
  if (ctx > scorer.max_ctx())
    throw std::invalid_argument("perplexity: ctx " + std::to_string(ctx) + " exceeds the session's context " +
                                std::to_string(scorer.max_ctx()));
  const std::vector<Window> windows = plan_windows(static_cast<long long>(tokens.size()), ctx, stride);
  PerplexityResult r;
  const auto t0 = std::chrono::steady_clock::now();
  for (const Window& w : windows) {
    ScoredSequence s;
    s.ids.assign(tokens.begin() + w.begin, tokens.begin() + w.end);
    s.first_target = int(w.score_from - w.begin);
    const std::vector<std::vector<double>> lps = scorer.score({s});  // (not a range-for over a temporary's [0])
    for (double lp : lps[0]) r.nll_sum -= lp;
    r.tokens_scored += w.end - w.score_from;
    r.tokens_forwarded += w.end - w.begin;
    ++r.windows;
    if (progress) progress(r.windows, int(windows.size()));
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace hpcinfer::eval
