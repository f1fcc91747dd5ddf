// Perplexity with a strided sliding window (the usual method for a text longer than the context):
// window k covers tokens [k*stride, k*stride + ctx) (cut at the end of the text) and scores only the tokens that
// the previous window did not. With stride < ctx every token but the first is scored exactly once, each with at
// least ctx - stride tokens of context (except in the first window). stride = ctx gives disjoint windows, where
// the first token of each window has no context and is not scored.
#pragma once

#include <vector>

#include "core/eval/sequence_scorer.hpp"

namespace hpcinfer::eval {

struct Window {
  long long begin = 0, end = 0;  // tokens [begin, end) go through the model
  long long score_from = 1;      // tokens [score_from, end) are scored; begin < score_from <= end
};

// The windows over n tokens; throws std::invalid_argument unless 0 < stride <= ctx and ctx >= 2.
std::vector<Window> plan_windows(long long n_tokens, int ctx, int stride);

struct PerplexityResult {
  long long tokens_scored = 0;
  long long tokens_forwarded = 0;  // scored plus the context re-read by overlapping windows
  int windows = 0;
  double nll_sum = 0;  // natural log
  double seconds = 0;  // forward passes and log-softmax (tokenization excluded)
  double nll_mean() const { return tokens_scored ? nll_sum / double(tokens_scored) : 0.0; }
  double perplexity() const;
};

// Runs plan_windows(tokens.size(), ctx, stride) through the scorer (whose context must hold ctx tokens).
// progress (optional) is called after each window with (windows done, windows in all).
PerplexityResult perplexity(SequenceScorer& scorer, const std::vector<int>& tokens, int ctx, int stride,
                            void (*progress)(int done, int total) = nullptr);

}  // namespace hpcinfer::eval
