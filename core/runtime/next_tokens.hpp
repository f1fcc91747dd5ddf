// The last stage's next tokens without the vocabulary on the host: each row's choice takes from the backend only
// what it needs (ModelStage::head_argmax / head_candidates):
//   greedy, no logprobs      the argmax, taken on the backend (ids only);
//   temperature sampling     the row's kCandidates largest logits with its max and softmax sum, drawn from by the
//                            one sampling rule (Sampler::sample_candidates);
//   logprobs                 the same candidates at temperature 1 (token_logprobs_from_candidates).
// A row the candidates do not settle (filters, the token or the top k reaching past them) comes to the host whole;
// that depends on the logits only, so every tp rank of the stage runs the head again alike.
#pragma once

#include <optional>
#include <vector>

#include "core/runtime/logprobs.hpp"
#include "core/runtime/model_stage.hpp"
#include "core/runtime/sampler.hpp"

namespace hpcinfer {

inline constexpr int64_t kCandidates = 1024;  // largest logits per row sent for sampling and logprobs

struct NextTokens {
  std::vector<int> tokens;                             // [rows]
  std::vector<std::optional<TokenLogprobs>> logprobs;  // [rows] when logprobs > 0
};

// rows: the batch rows to continue; samplers[i]: row i's request's sampler (all with the same parameters);
// logprobs: top-k logprobs wanted per token (0: none).
NextTokens next_tokens_on_backend(ModelStage& stage, const std::vector<int>& rows,
                                  const std::vector<Sampler*>& samplers, int logprobs);

}  // namespace hpcinfer
