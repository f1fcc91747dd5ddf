// Prompts JSONL in, completions JSONL out: broken lines are reported as FILE:LINE (stop or skip, as configured).
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/runtime/logprobs.hpp"
#include "core/runtime/requests.hpp"
#include "support/test_support.hpp"

using namespace hpcinfer;
using hpcinfer::test::ScratchDir;

TEST(Prompts, ReadsPromptsAndIds) {
  ScratchDir d;
  d.write("p.jsonl", "{\"id\": \"a\", \"prompt\": \"x\"}\n\n{\"prompt\": \"y\", \"id\": 7}\n{\"prompt\": \"z\"}\n");
  auto r = read_prompts_jsonl((d / "p.jsonl").string(), "stop", nullptr);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].id, "a");
  EXPECT_EQ(r[1].id, "7");
  EXPECT_EQ(r[2].id, "4");  // line number when no id
  EXPECT_EQ(r[2].prompt, "z");
  EXPECT_EQ(r[2].index, 2);
}

TEST(Prompts, BrokenLineStopsWithFileAndLine) {
  ScratchDir d;
  d.write("p.jsonl", "{\"prompt\": \"ok\"}\n{\"prompt\": \"unterminated\n{\"id\": 3}\n");
  const std::string path = (d / "p.jsonl").string();
  try {
    read_prompts_jsonl(path, "stop", nullptr);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":2: not valid JSON"), std::string::npos) << e.what();
  }
}

TEST(Prompts, BrokenLinesSkippedWithWarningsWhenConfigured) {
  ScratchDir d;
  d.write("p.jsonl", "{\"prompt\": \"ok\"}\nnot json\n{\"id\": 3}\n{\"prompt\": \"also ok\"}\n");
  std::vector<std::string> warnings;
  auto r = read_prompts_jsonl((d / "p.jsonl").string(), "skip", &warnings);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1].prompt, "also ok");
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[0].find(":2:"), std::string::npos);
  EXPECT_NE(warnings[1].find(":3: missing string field \"prompt\""), std::string::npos) << warnings[1];
}

TEST(Prompts, MissingFileIsNamed) {
  EXPECT_THROW(
      {
        try {
          read_prompts_jsonl("/nonexistent/prompts.jsonl", "stop", nullptr);
        } catch (const std::runtime_error& e) {
          EXPECT_NE(std::string(e.what()).find("/nonexistent/prompts.jsonl"), std::string::npos);
          throw;
        }
      },
      std::runtime_error);
}

TEST(Completions, EachLineIsFlushedAsWritten) {
  ScratchDir d;
  const std::string path = (d / "c.jsonl").string();
  CompletionWriter w(path);
  Completion c;
  c.id = "a";
  c.text = "bad utf8 \xff ok";
  c.token_ids = {5, 6};
  c.finish_reason = "length";
  w.write(c);
  // Readable before the writer closes: a crash after this line loses nothing.
  auto j = nlohmann::json::parse(hpcinfer::test::read_file(path));
  EXPECT_EQ(j["id"], "a");
  EXPECT_EQ(j["token_ids"], (std::vector<int>{5, 6}));
  EXPECT_EQ(j["finish_reason"], "length");
}

// outputs.logprobs: log-softmax in float64 of the f32 logits, the top k most likely first, ties by lower id.
TEST(Logprobs, TopKOfTheLogSoftmaxInFloat64) {
  const std::vector<float> logits{1.5f, -2.0f, 3.25f, 3.25f, 0.0f, -30.0f, 2.0f};
  TokenLogprobs t = token_logprobs(logits.data(), int64_t(logits.size()), 6, 4);
  long double sum = 0;  // reference: a long-double log-sum-exp without the max shift
  for (float v : logits) sum += std::exp(static_cast<long double>(v));
  const auto lp = [&](int i) { return double(static_cast<long double>(logits[size_t(i)]) - std::log(sum)); };
  EXPECT_EQ(t.token, 6);
  EXPECT_NEAR(t.logprob, lp(6), 1e-12);
  ASSERT_EQ(t.top.size(), 4u);
  const int order[] = {2, 3, 6, 0};  // the tie 2/3 goes to the lower id first
  double mass = 0;
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(t.top[i].first, order[i]) << i;
    EXPECT_NEAR(t.top[i].second, lp(order[i]), 1e-12) << i;
    mass += std::exp(t.top[i].second);
  }
  EXPECT_GT(mass, 0.9);
  EXPECT_LT(mass, 1.0);
  // k larger than the vocabulary: every token, and their probabilities sum to 1.
  TokenLogprobs all = token_logprobs(logits.data(), int64_t(logits.size()), 0, 50);
  ASSERT_EQ(all.top.size(), logits.size());
  double total = 0;
  for (const auto& [id, v] : all.top) total += std::exp(v);
  EXPECT_NEAR(total, 1.0, 1e-12);
  EXPECT_EQ(all.top.back().first, 5);
}

TEST(Logprobs, LargeLogitsDoNotOverflow) {
  const std::vector<float> logits{1000.0f, 999.0f, -1000.0f};
  TokenLogprobs t = token_logprobs(logits.data(), 3, 1, 2);
  EXPECT_NEAR(t.logprob, -1.0 - std::log1p(std::exp(-1.0)), 1e-12);
  EXPECT_NEAR(t.top[0].second, -std::log1p(std::exp(-1.0)), 1e-12);
  EXPECT_THROW(token_logprobs(logits.data(), 3, 3, 2), std::invalid_argument);
}

TEST(Completions, LogprobsAreWrittenOnlyWhenAskedFor) {
  Completion c;
  c.id = "a";
  c.token_ids = {2};
  EXPECT_FALSE(nlohmann::json::parse(completion_json(c)).contains("logprobs"));
  c.with_logprobs = true;
  c.logprobs.push_back({2, -0.25, {{2, -0.25}, {7, -1.5}}});
  auto j = nlohmann::json::parse(completion_json(c));
  ASSERT_EQ(j["logprobs"].size(), 1u);
  EXPECT_EQ(j["logprobs"][0]["token"], 2);
  EXPECT_EQ(j["logprobs"][0]["logprob"].get<double>(), -0.25);
  EXPECT_EQ(j["logprobs"][0]["top"][1][0], 7);
  EXPECT_EQ(j["logprobs"][0]["top"][1][1].get<double>(), -1.5);
}
