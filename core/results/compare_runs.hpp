// `hpcinfer compare RUN_A RUN_B`: per prompt id, whether the generated token ids are equal, where they first differ,
// and (where both runs kept logprobs, outputs.logprobs: K) the mean KL divergence KL(A || B) of the next-token
// distributions.
//
// First divergence: the first index where the token ids differ; when one run's ids are a prefix of the other's
// (e.g. a different max_new_tokens), the shorter length; none for an exact match.
//
// KL is a top-K approximation. completions.jsonl keeps only the K most likely tokens of each step, so a token in
// A's top-K but not in B's has an unknown probability in B. The KL is therefore taken over a coarser partition whose
// masses both runs know exactly: one bucket per token id in the top-K of BOTH runs, and one bucket for the rest of
// the vocabulary (1 - the sum of those probabilities). When both top-K sets are the same (runs that agree) this is
// the union of the two top-K sets plus the rest; otherwise the ids outside the intersection fall into the rest
// bucket. Merging buckets never increases a KL divergence, so the value is a lower bound of the exact KL over the
// full vocabulary; it is 0 for identical distributions. It is averaged over the positions where both runs
// conditioned on the same tokens: the common prefix and the first divergent position itself (the two runs drew
// that token from distributions over the same context); after that the contexts differ and a KL would not compare
// like with like.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace hpcinfer {

using TopK = std::vector<std::pair<int, double>>;  // (token id, logprob), most likely first

struct RunCompletion {
  std::vector<int> token_ids;
  bool has_logprobs = false;
  std::vector<TopK> top;  // one per token_ids entry when has_logprobs
};

struct RunCompletions {
  std::string path;                             // the completions.jsonl read
  std::vector<std::string> order;               // ids in file order
  std::map<std::string, RunCompletion> by_id;
};

// RUN is a results directory (its completions.jsonl) or a completions.jsonl file. Throws std::invalid_argument when
// there is no such file, std::runtime_error naming FILE:LINE for a malformed line or a repeated id.
RunCompletions read_run_completions(const std::string& run);

// KL(p || q) over {ids in both top-K lists} + {rest}; natural log (nats). Lists with no id in common give the KL of
// the two-bucket partition {nothing, everything}, i.e. 0.
double topk_kl(const TopK& p, const TopK& q);

struct PromptComparison {
  std::string id;
  bool in_a = false, in_b = false;
  bool exact = false;
  std::optional<int> first_divergence;  // none when exact (or missing from a run)
  size_t tokens_a = 0, tokens_b = 0;
  std::optional<double> mean_kl;        // when both kept logprobs
  std::optional<double> max_kl;
  int kl_positions = 0;
};

struct Comparison {
  std::string run_a, run_b;
  std::vector<PromptComparison> prompts;  // A's order, then ids only in B
  int exact_matches = 0;
  int mismatches = 0;                     // prompts in both runs that differ, plus prompts missing from one run
  std::optional<double> mean_first_divergence;  // over prompts in both runs that differ
  std::optional<double> mean_kl;                // mean over prompts of their mean KL
  std::optional<double> max_kl;                 // largest KL of any position
  int kl_prompts = 0;
  int top_k = 0;                                // the smaller K of the two runs (0 = no logprobs)
};

Comparison compare_runs(const RunCompletions& a, const RunCompletions& b);

nlohmann::json comparison_json(const Comparison& c);
std::string comparison_text(const Comparison& c);      // a table and the summary line
std::string comparison_summary_line(const Comparison& c);
std::string comparison_markdown(const Comparison& c);  // the correctness report (--out)

}  // namespace hpcinfer
