// hpcinfer agree --model M --weights-a bf16 --weights-b int8 --prompts FILE [-n 64] [--json]
// How closely weights plugin B follows plugin A on the same model: for every prompt, A decodes n greedy tokens;
// B is teacher-forced on A's path (one prefill pass) and its next-token distributions are compared with A's:
//   agreement       fraction of the n positions where B's argmax is A's token (greedy token agreement);
//   first_diverge   the first such position where they differ (n if none): where a free-running B would leave A;
//   mean_kl         mean over positions of KL(P_A || P_B), natural log, from the full f32 logits in float64.
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/cli/cli_util.hpp"
#include "core/cli/single_process.hpp"
#include "core/tokenizer/prompt_ids.hpp"
#include "core/runtime/requests.hpp"

namespace hpcinfer::cli {
namespace {

// KL(p || q) for two logit rows, both log-softmaxed in float64.
double kl_divergence(const float* a, const float* b, int64_t V) {
  auto log_z = [V](const float* l) {
    double m = l[0], s = 0;
    for (int64_t i = 1; i < V; ++i) m = std::max(m, double(l[i]));
    for (int64_t i = 0; i < V; ++i) s += std::exp(double(l[i]) - m);
    return m + std::log(s);
  };
  const double za = log_z(a), zb = log_z(b);
  double kl = 0;
  for (int64_t i = 0; i < V; ++i) {
    const double la = a[i] - za, lb = b[i] - zb;
    kl += std::exp(la) * (la - lb);
  }
  return std::max(kl, 0.0);
}

// Logits of positions [first_row, ids.size()) after one pass over ids in slot 0.
std::vector<float> forward_rows(RankSession& s, const std::vector<int>& ids, int first_row) {
  TokenBatch b;
  b.tokens = ids;
  std::vector<int> rows;
  for (int i = 0; i < int(ids.size()); ++i) {
    b.slot.push_back(0), b.pos.push_back(i);
    if (i >= first_row) rows.push_back(i);
  }
  return forward_logits(s, b, rows);
}

}  // namespace

int cmd_agree(const Args& args) {
  CLI::App app{"Greedy agreement and KL divergence of weights plugin B against plugin A on the same model",
               "hpcinfer agree"};
  ModelOptions a, b;
  std::string prompts;
  int n = 64;
  bool json = false;
  a.add_to(app);
  app.add_option("--weights-b", b.weights, "weights plugin B (compared against --weights)")->required();
  app.add_option("--group-size-b", b.group_size, "int8 group size of B");
  app.add_option("--prompts", prompts, "prompts JSONL ({\"id\", \"prompt\"} or {\"id\", \"prompt_ids\"} per line)")->required();
  app.add_option("-n", n, "greedy tokens per prompt (default 64)")->check(CLI::PositiveNumber);
  app.add_flag("--json", json, "print one JSON object");
  if (auto rc = parse_args(app, args)) return *rc;
  b.model = a.model, b.format = a.format, b.tokenizer = a.tokenizer, b.threads = a.threads;

  std::vector<Request> reqs = read_prompts_jsonl(prompts, "stop", nullptr);
  size_t longest = 0;
  {  // tokenizer first (no weights): the context size depends on the prompts
    ExperimentConfig c;
    c.model.path = a.model, c.model.format = a.format;
    auto probe = describe_rank(c, LaunchEnv{});
    const bool all_ids = std::all_of(reqs.begin(), reqs.end(), [](const Request& r) { return r.ids_given; });
    std::unique_ptr<Tokenizer> tok;  // not needed when every prompt comes as ids
    if (!all_ids) tok = open_tokenizer(a.tokenizer, *probe->model);
    for (Request& r : reqs) {
      if (!r.ids_given) r.prompt_ids = prompt_ids(*tok, r.prompt, {});
      longest = std::max(longest, r.prompt_ids.size());
    }
  }
  const int max_ctx = int(longest) + n + 1;
  auto sa = open_single_process(a, 1, max_ctx, false);
  auto sb = open_single_process(b, 1, max_ctx, false);
  const int64_t V = sa->model->desc().vocab;

  nlohmann::ordered_json per_prompt = nlohmann::json::array();
  double sum_agree = 0, sum_kl = 0, max_kl = 0, sum_div = 0;
  for (const Request& r : reqs) {
    // A: greedy decode of n tokens, keeping each step's logits.
    std::vector<int> ids = r.prompt_ids;
    const int L = int(ids.size());
    std::vector<float> la = forward_rows(*sa, ids, L - 1);
    std::vector<float> a_logits(la.begin(), la.end());
    for (int t = 0; t < n; ++t) {
      const float* last = a_logits.data() + size_t(t) * size_t(V);
      ids.push_back(int(kernels::argmax(last, V)));
      if (t + 1 == n) break;
      const std::vector<float> l = forward_logits(*sa, TokenBatch{{ids.back()}, {0}, {int(ids.size()) - 1}}, {0});
      a_logits.insert(a_logits.end(), l.begin(), l.end());
    }
    // B: teacher-forced on A's path, one pass; rows L-1 .. L+n-2 predict A's n tokens.
    std::vector<int> forced(ids.begin(), ids.end() - 1);
    std::vector<float> b_logits = forward_rows(*sb, forced, L - 1);
    int agree = 0, first_diverge = n;
    double kl = 0, kl_max = 0;
    for (int t = 0; t < n; ++t) {
      const float* pa = a_logits.data() + size_t(t) * size_t(V);
      const float* pb = b_logits.data() + size_t(t) * size_t(V);
      const bool same = int(kernels::argmax(pb, V)) == ids[size_t(L + t)];
      agree += same;
      if (!same && first_diverge == n) first_diverge = t;
      const double k = kl_divergence(pa, pb, V);
      kl += k, kl_max = std::max(kl_max, k);
    }
    per_prompt.push_back({{"id", r.id}, {"agreement", double(agree) / n}, {"first_diverge", first_diverge},
                          {"mean_kl", kl / n}, {"max_kl", kl_max}});
    sum_agree += double(agree) / n, sum_kl += kl / n, sum_div += first_diverge, max_kl = std::max(max_kl, kl_max);
  }
  const double P = double(std::max<size_t>(reqs.size(), 1));
  nlohmann::ordered_json out = {{"model", a.model}, {"weights_a", sa->weights_plugin}, {"weights_b", sb->weights_plugin},
                                {"prompts", reqs.size()}, {"tokens_per_prompt", n},
                                {"agreement", sum_agree / P}, {"mean_first_diverge", sum_div / P},
                                {"mean_kl", sum_kl / P}, {"max_kl", max_kl}, {"per_prompt", per_prompt}};
  if (json) {
    std::printf("%s\n", out.dump().c_str());
    return 0;
  }
  std::printf("%s: %s vs %s, %zu prompts x %d tokens\n", a.model.c_str(), sa->weights_plugin.c_str(),
              sb->weights_plugin.c_str(), reqs.size(), n);
  std::printf("greedy agreement %.4f, mean first divergence %.1f, mean KL %.3g, max KL %.3g\n", sum_agree / P,
              sum_div / P, sum_kl / P, max_kl);
  return 0;
}

}  // namespace hpcinfer::cli
