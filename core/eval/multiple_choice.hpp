// Multiple choice by log-likelihood: each ending is scored as the sum of the logprobs of its tokens given the
// context (BOS + context + ending, one sequence per ending, all endings of an item in one forward pass).
//   acc       the ending with the highest sum is the answer;
//   acc_norm  the highest sum divided by the ending's length in bytes (lm-evaluation-harness's acc_norm,
//             customary for HellaSwag: it removes the bias towards short endings).
// The standard error of an accuracy p over n items is sqrt(p (1 - p) / n).
#pragma once

#include <memory>
#include <vector>

#include "core/eval/mc_tasks.hpp"
#include "core/eval/sequence_scorer.hpp"
#include "core/tokenizer/tokenizer.hpp"

namespace hpcinfer::eval {

// An item's endings as scorer inputs. The ending's tokens are those of tokenize(context + ending) after its
// common prefix with tokenize(context); when the sequence is longer than max_ctx its start is cut off.
struct TokenizedItem {
  std::vector<ScoredSequence> endings;
  std::vector<size_t> ending_bytes;
  int gold = 0;
};
TokenizedItem tokenize_item(const McItem& item, const Tokenizer& tok, int max_ctx);

struct McResult {
  int items = 0, correct = 0, correct_norm = 0;
  std::vector<int> predictions, predictions_norm;  // per item, the chosen ending
  double gold_logprob_sum = 0;                     // sum over items of the gold ending's logprob
  long long tokens_forwarded = 0;
  double seconds = 0;  // forward passes (tokenization excluded)
  double acc() const { return items ? double(correct) / items : 0.0; }
  double acc_norm() const { return items ? double(correct_norm) / items : 0.0; }
};

double accuracy_stderr(double p, int n);  // sqrt(p (1 - p) / n); 0 for n = 0

// The scorer needs as many slots as the most endings of an item.
McResult score_multiple_choice(SequenceScorer& scorer, const std::vector<TokenizedItem>& items,
                               void (*progress)(int done, int total) = nullptr);

}  // namespace hpcinfer::eval
