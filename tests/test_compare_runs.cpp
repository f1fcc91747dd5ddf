// `hpcinfer compare` logic on hand-made completions files: first divergence, missing ids, the top-K KL against its
// definition, malformed input. No model needed (the end-to-end compare of real runs is in test_results_bundle).
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/results/compare_runs.hpp"
#include "support/test_support.hpp"

using namespace hpcinfer;
using namespace hpcinfer::test;

namespace {

// One completions.jsonl line; top: per token, (id, prob) pairs (stored as logprobs).
std::string line(const std::string& id, const std::vector<int>& ids,
                 const std::vector<std::vector<std::pair<int, double>>>& top = {}) {
  nlohmann::json j{{"id", id}, {"token_ids", ids}};
  if (!top.empty()) {
    nlohmann::json lp = nlohmann::json::array();
    for (size_t t = 0; t < top.size(); ++t) {
      nlohmann::json pairs = nlohmann::json::array();
      for (const auto& [tok, p] : top[t]) pairs.push_back({tok, std::log(p)});
      lp.push_back({{"token", ids[t]}, {"logprob", pairs[0][1]}, {"top", pairs}});
    }
    j["logprobs"] = lp;
  }
  return j.dump() + "\n";
}

TopK topk(const std::vector<std::pair<int, double>>& probs) {
  TopK t;
  for (const auto& [id, p] : probs) t.push_back({id, std::log(p)});
  return t;
}

}  // namespace

TEST(TopKKl, IdenticalDistributionsGiveZero) {
  const TopK p = topk({{3, 0.5}, {7, 0.2}, {1, 0.1}});
  EXPECT_EQ(topk_kl(p, p), 0.0);
}

TEST(TopKKl, SameIdsIsTheKlOverThoseIdsPlusTheRest) {
  const TopK p = topk({{1, 0.5}, {2, 0.3}}), q = topk({{1, 0.4}, {2, 0.4}});
  // Buckets {1}, {2}, rest: p = (.5, .3, .2), q = (.4, .4, .2).
  const double expected = 0.5 * std::log(0.5 / 0.4) + 0.3 * std::log(0.3 / 0.4) + 0.2 * std::log(0.2 / 0.2);
  EXPECT_NEAR(topk_kl(p, q), expected, 1e-12);
  EXPECT_GT(topk_kl(p, q), 0.0);
  // Not symmetric: KL(q || p) is another number.
  const double reverse = 0.4 * std::log(0.4 / 0.5) + 0.4 * std::log(0.4 / 0.3);
  EXPECT_NEAR(topk_kl(q, p), reverse, 1e-12);
}

TEST(TopKKl, IdsInOnlyOneTopKFallIntoTheRestBucket) {
  const TopK p = topk({{1, 0.6}, {2, 0.3}}), q = topk({{1, 0.5}, {9, 0.4}});
  // Only id 1 is in both: buckets {1}, rest; p = (.6, .4), q = (.5, .5).
  const double expected = 0.6 * std::log(0.6 / 0.5) + 0.4 * std::log(0.4 / 0.5);
  EXPECT_NEAR(topk_kl(p, q), expected, 1e-12);
  // No id in common: a single bucket, nothing to tell apart.
  EXPECT_EQ(topk_kl(topk({{1, 0.9}}), topk({{2, 0.9}})), 0.0);
}

TEST(CompareRuns, FirstDivergenceAndPrefixesAndMissingIds) {
  ScratchDir dir;
  dir.write("a/completions.jsonl", line("x", {5, 6, 7, 8}) + line("y", {1, 2, 3}) + line("z", {4, 4}) +
                                       line("only_a", {1}));
  dir.write("b.jsonl", line("y", {1, 2, 9}) + line("x", {5, 6, 7, 8}) + line("z", {4, 4, 4, 4}) + line("only_b", {2}));
  const Comparison c = compare_runs(read_run_completions((dir / "a").string()),
                                    read_run_completions((dir / "b.jsonl").string()));
  ASSERT_EQ(c.prompts.size(), 5u);
  EXPECT_EQ(c.prompts[0].id, "x");  // A's order, then B's extra ids
  EXPECT_TRUE(c.prompts[0].exact);
  EXPECT_FALSE(c.prompts[0].first_divergence.has_value());
  EXPECT_FALSE(c.prompts[1].exact);
  EXPECT_EQ(c.prompts[1].first_divergence, 2);
  EXPECT_EQ(c.prompts[2].first_divergence, 2);  // a prefix: the shorter length
  EXPECT_EQ(c.prompts[2].tokens_b, 4u);
  EXPECT_TRUE(c.prompts[3].in_a);
  EXPECT_FALSE(c.prompts[3].in_b);
  EXPECT_EQ(c.prompts[4].id, "only_b");
  EXPECT_EQ(c.exact_matches, 1);
  EXPECT_EQ(c.mismatches, 4);
  ASSERT_TRUE(c.mean_first_divergence.has_value());
  EXPECT_DOUBLE_EQ(*c.mean_first_divergence, 2.0);  // over y and z, the two in both runs that differ
  EXPECT_FALSE(c.mean_kl.has_value());              // no logprobs
  const auto j = comparison_json(c);
  EXPECT_EQ(j["summary"]["exact_matches"], 1);
  EXPECT_TRUE(j["summary"]["mean_kl"].is_null());
}

TEST(CompareRuns, KlIsAveragedOverTheCommonContextAndTheDivergentStep) {
  ScratchDir dir;
  const std::vector<std::pair<int, double>> same{{1, 0.7}, {2, 0.2}};
  const std::vector<std::pair<int, double>> a1{{1, 0.6}, {2, 0.3}}, b1{{2, 0.5}, {1, 0.4}};
  const std::vector<std::pair<int, double>> far_a{{1, 0.99}, {2, 0.005}}, far_b{{1, 0.01}, {2, 0.98}};
  // Tokens differ at index 1; index 2 has wildly different distributions but follows the divergence: left out.
  dir.write("a.jsonl", line("p", {1, 1, 1}, {same, a1, far_a}));
  dir.write("b.jsonl", line("p", {1, 2, 2}, {same, b1, far_b}));
  const Comparison c = compare_runs(read_run_completions((dir / "a.jsonl").string()),
                                    read_run_completions((dir / "b.jsonl").string()));
  ASSERT_EQ(c.prompts.size(), 1u);
  EXPECT_EQ(c.prompts[0].first_divergence, 1);
  EXPECT_EQ(c.prompts[0].kl_positions, 2);
  const double kl1 = 0.6 * std::log(0.6 / 0.4) + 0.3 * std::log(0.3 / 0.5) + 0.1 * std::log(0.1 / 0.1);
  ASSERT_TRUE(c.mean_kl.has_value());
  EXPECT_NEAR(*c.mean_kl, (0.0 + kl1) / 2, 1e-12);
  EXPECT_NEAR(*c.max_kl, kl1, 1e-12);
  EXPECT_EQ(c.top_k, 2);
}

TEST(CompareRuns, BadInputsNameTheFileAndLine) {
  ScratchDir dir;
  EXPECT_THROW(read_run_completions((dir / "nothing").string()), std::invalid_argument);
  dir.write("bad.jsonl", line("x", {1}) + "{not json\n");
  try {
    read_run_completions((dir / "bad.jsonl").string());
    FAIL() << "a malformed line was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:2:"), std::string::npos) << e.what();
  }
  dir.write("dup.jsonl", line("x", {1}) + line("x", {2}));
  EXPECT_THROW(read_run_completions((dir / "dup.jsonl").string()), std::runtime_error);
  dir.write("short_lp.jsonl", R"({"id": "x", "token_ids": [1, 2], "logprobs": [{"token": 1, "logprob": 0, "top": []}]})"
                              "\n");
  EXPECT_THROW(read_run_completions((dir / "short_lp.jsonl").string()), std::runtime_error);
}

TEST(CompareCli, ExitCodesAndReport) {
  ScratchDir dir;
  dir.write("a.jsonl", line("x", {1, 2}) + line("y", {3}));
  dir.write("b.jsonl", line("x", {1, 2}) + line("y", {4}));
  auto same = run_command(bin() + " compare " + (dir / "a.jsonl").string() + " " + (dir / "a.jsonl").string() +
                          " --require-match");
  EXPECT_EQ(same.exit_code, 0) << same.output;
  EXPECT_NE(same.output.find("2 prompts, 2 exact matches"), std::string::npos) << same.output;
  const std::string ab = " compare " + (dir / "a.jsonl").string() + " " + (dir / "b.jsonl").string();
  auto diff = run_command(bin() + ab + " --out " + (dir / "report.md").string());
  EXPECT_EQ(diff.exit_code, 0) << diff.output;  // it ran: differences are a result, not a failure
  EXPECT_NE(diff.output.find("1 exact matches, 1 differ"), std::string::npos) << diff.output;
  EXPECT_NE(read_file(dir / "report.md").find("| y | DIFFER | 0 |"), std::string::npos) << read_file(dir / "report.md");
  EXPECT_EQ(run_command(bin() + ab + " --require-match").exit_code, 1);
  auto js = run_command(bin() + ab + " --json 2>/dev/null");
  ASSERT_EQ(js.exit_code, 0) << js.output;
  const auto j = nlohmann::json::parse(js.output);
  EXPECT_EQ(j["summary"]["mismatches"], 1);
  EXPECT_EQ(j["prompts"][1]["first_divergence"], 0);
  EXPECT_EQ(run_command(bin() + " compare " + (dir / "missing").string() + " " + (dir / "a.jsonl").string()).exit_code,
            2);
}
