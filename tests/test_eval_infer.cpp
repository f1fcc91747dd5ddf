// hpcinfer eval infer (the inference-speed sweep): the statistics, and --quick on stories260K (every point measured
// or skipped for the model's 512-token context with its reason).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/eval/sample_stats.hpp"
#include "support/test_support.hpp"

namespace hpcinfer {
namespace {

const char* kModel = "models/stories260K/stories260K.bin";
const char* kTokenizer = "models/stories260K/tok512.bin";

std::string data(const std::string& rel) { return (test::shared_data() / rel).string(); }

TEST(SampleStats, MeanStdPercentiles) {
  const eval::SampleStats s = eval::summarize({4, 1, 3, 2});
  EXPECT_EQ(s.n, 4);
  EXPECT_DOUBLE_EQ(s.mean, 2.5);
  EXPECT_NEAR(s.stddev, std::sqrt(5.0 / 3.0), 1e-12);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 4);
  EXPECT_DOUBLE_EQ(s.p50, 2.5);
  EXPECT_NEAR(s.p90, 3.7, 1e-12);
  EXPECT_NEAR(s.p99, 3.97, 1e-12);
  const eval::SampleStats one = eval::summarize({7});
  EXPECT_DOUBLE_EQ(one.p99, 7);
  EXPECT_DOUBLE_EQ(one.stddev, 0);
  EXPECT_EQ(eval::summarize({}).n, 0);
}

TEST(EvalInferCli, QuickGridOnStories260K) {
  HPCINFER_REQUIRE_DATA(kModel);
  const test::CommandResult r =
      test::run_command("(" + test::bin() + " eval infer --quick --json --threads 1 --trials 3 --warmup 1 --model " +
                        test::shell_quote(data(kModel)) + " --tokenizer " + test::shell_quote(data(kTokenizer)) +
                        " 2>/dev/null)");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(r.output);
  const int max_ctx = j.at("max_context").get<int>();
  EXPECT_EQ(max_ctx, 512);
  int ok = 0, skipped = 0, prefill = 0, decode = 0;
  for (const nlohmann::json& p : j.at("points")) {
    const std::string phase = p.at("phase");
    const int len = phase == "prefill" ? p.at("seq").get<int>() : p.at("ctx").get<int>();
    (phase == "prefill" ? prefill : decode)++;
    if (len > max_ctx) {
      ASSERT_EQ(p.at("status"), "skipped") << p.dump();
      EXPECT_NE(p.at("reason").get<std::string>().find("max context"), std::string::npos) << p.dump();
      ++skipped;
      continue;
    }
    ASSERT_EQ(p.at("status"), "ok") << p.dump();
    ++ok;
    const nlohmann::json& t = p.at("tok_s");
    ASSERT_EQ(p.at("trials_tok_s").size(), 3u);
    for (double x : p.at("trials_tok_s")) EXPECT_GT(x, 0) << p.dump();
    EXPECT_GT(t.at("mean").get<double>(), 0) << p.dump();
    EXPECT_GT(t.at("min").get<double>(), 0) << p.dump();
    EXPECT_LE(t.at("min").get<double>(), t.at("p50").get<double>()) << p.dump();
    EXPECT_LE(t.at("p50").get<double>(), t.at("max").get<double>()) << p.dump();
    EXPECT_LE(t.at("p90").get<double>(), t.at("p99").get<double>() + 1e-9) << p.dump();
    EXPECT_GE(t.at("std").get<double>(), 0) << p.dump();
  }
  EXPECT_GT(prefill, 0);
  EXPECT_GT(decode, 0);
  EXPECT_GT(ok, 0);
  EXPECT_GT(skipped, 0);  // the quick grid reaches past 512 on purpose
}

}  // namespace
}  // namespace hpcinfer
