#include "core/eval/multiple_choice.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/tokenizer/prompt_ids.hpp"

namespace hpcinfer::eval {

TokenizedItem tokenize_item(const McItem& item, const Tokenizer& tok, int max_ctx) {
  const PromptOptions text{"auto", false, /*corpus=*/true};
  const std::vector<int> ctx = prompt_ids(tok, item.context, text);
  TokenizedItem out;
  out.gold = item.gold;
  for (const std::string& ending : item.endings) {
    ScoredSequence s;
    s.ids = prompt_ids(tok, item.context + ending, text);
    size_t common = 0;
    while (common < ctx.size() && common < s.ids.size() && ctx[common] == s.ids[common]) ++common;
    // At least one ending token, and never the first token (it has no context).
    s.first_target = int(std::clamp<size_t>(common, 1, std::max<size_t>(s.ids.size(), 2) - 1));
    if (int(s.ids.size()) > max_ctx) {
      const int cut = int(s.ids.size()) - max_ctx;
      s.ids.erase(s.ids.begin(), s.ids.begin() + cut);
      s.first_target = std::max(1, s.first_target - cut);
    }
    if (s.ids.size() < 2) s.ids.insert(s.ids.begin(), std::max(tok.bos_id(), 0));
    out.endings.push_back(std::move(s));
    out.ending_bytes.push_back(std::max<size_t>(ending.size(), 1));
  }
  return out;
}

double accuracy_stderr(double p, int n) { return n > 0 ? std::sqrt(p * (1.0 - p) / n) : 0.0; }

McResult score_multiple_choice(SequenceScorer& scorer, const std::vector<TokenizedItem>& items,
                               void (*progress)(int, int)) {
  McResult r;
  const auto t0 = std::chrono::steady_clock::now();
  const long long forwarded0 = scorer.tokens_forwarded();
  for (const TokenizedItem& it : items) {
    const std::vector<std::vector<double>> lps = scorer.score(it.endings);
    int best = 0, best_norm = 0;
    std::vector<double> sum(lps.size()), norm(lps.size());
    for (size_t e = 0; e < lps.size(); ++e) {
      for (double lp : lps[e]) sum[e] += lp;
      norm[e] = sum[e] / double(it.ending_bytes[e]);
      if (sum[e] > sum[size_t(best)]) best = int(e);
      if (norm[e] > norm[size_t(best_norm)]) best_norm = int(e);
    }
    r.predictions.push_back(best);
    r.predictions_norm.push_back(best_norm);
    r.correct += best == it.gold;
    r.correct_norm += best_norm == it.gold;
    r.gold_logprob_sum += sum[size_t(it.gold)];
    ++r.items;
    if (progress) progress(r.items, int(items.size()));
  }
  r.tokens_forwarded = scorer.tokens_forwarded() - forwarded0;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace hpcinfer::eval
