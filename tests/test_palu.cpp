// PaLU (hpcinfer palu compress + the palu attention kind), through the CLI the way users run it:
// - at ratio 1.0 nothing is truncated, so the compressed model's logits equal the baseline's within 1e-4 at every
//   prompt position and every decode step, and its greedy ids are the same, on stories260K (llama2.c) and on the
//   transformers-saved llama3-gqa-ropescaled (GQA 8/2, llama3 RoPE scaling), single process, pp = 2 and tp = 2
//   (latent cache, keys rebuilt before RoPE, values folded into wo_latent: the algebra is exact);
// - at ratio 0.7 the cache holds the latents: KV bytes per token from `plan --show --json` and from a run's
//   metrics (raw.json) are within 5% of the formula layers x groups x (rank_k + rank_v) x 4 bytes;
// - bad input gets an error naming the option: ratio outside (0, 1], a group size that does not divide the kv
//   heads, a missing or too short calibration file, a tp that would cut a group.
// Calibration text: WikiText-2 test from ../shared/data (the tests skip without it).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support/test_support.hpp"

namespace hpcinfer {
namespace {

namespace fs = std::filesystem;
using test::run_command;
using test::shell_quote;

const char* kWiki = "eval/wikitext-2-raw/wiki.test.raw";

struct Model {
  const char* name;
  std::string path, tokenizer;  // tokenizer: for the calibration text (the HF reference has none of its own)
  int group_size;               // kv heads per group; leaves 2 groups, so tp = 2 works
};

Model stories() {
  const fs::path d = test::shared_data() / "models/stories260K";
  return {"stories260K", (d / "stories260K.bin").string(), (d / "tok512.bin").string(), 2};
}
Model llama3_reference() {
  return {"llama3-gqa-ropescaled", (test::shared_data() / "reference/hf/llama3-gqa-ropescaled").string(),
          (test::shared_data() / "models/stories260K/tok512.bin").string(), 1};
}

test::CommandResult compress(const Model& m, const std::string& out, const std::string& more) {
  return run_command(test::bin() + " palu compress --model " + shell_quote(m.path) + " --tokenizer " +
                     shell_quote(m.tokenizer) + " --calib " + shell_quote((test::shared_data() / kWiki).string()) +
                     " --calib-tokens 1024 --out " + shell_quote(out) + " " + more + " 2>&1");
}

struct RunOutput {
  std::vector<int> ids;
  std::vector<float> logits;  // every prompt position, then every generated token but the last
  nlohmann::json raw;
};

RunOutput run_world(const test::ScratchDir& dir, const std::string& model, const std::string& name, int tp, int pp) {
  nlohmann::json prompt{{"id", "p"}, {"prompt_ids", {1, 17, 99, 250, 3, 42, 7, 300, 128, 5, 64, 200, 11, 400, 2, 77}}};
  dir.write("prompts.jsonl", prompt.dump() + "\n");
  const fs::path out = dir / name;
  dir.write(name + ".yaml", "model:\n  path: " + model + "\nplugins:\n  comm: gloo\n  weights: f32\n  strategy: " +
                                std::string(tp > 1 ? "tp_pp" : "pp") + "\nworld:\n  tp: " + std::to_string(tp) +
                                "\n  pp: " + std::to_string(pp) + "\n  timeout_s: 60\nthreads: 1\ninputs:\n  prompts: " +
                                (dir / "prompts.jsonl").string() +
                                "\ngeneration:\n  max_new_tokens: 24\n  temperature: 0\noutputs:\n  dir: " +
                                out.string() + "\n  keep_logits: true\n");
  const auto r = run_command(test::bin() + " launch -n " + std::to_string(tp * pp) + " " +
                             shell_quote((dir / (name + ".yaml")).string()) + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  RunOutput run;
  std::ifstream c(out / "completions.jsonl");
  for (std::string line; std::getline(c, line);)
    if (!line.empty()) run.ids = nlohmann::json::parse(line).at("token_ids").get<std::vector<int>>();
  const std::string raw = test::read_file(out / "logits/0.f32");
  run.logits.resize(raw.size() / sizeof(float));
  std::memcpy(run.logits.data(), raw.data(), run.logits.size() * sizeof(float));
  run.raw = nlohmann::json::parse(test::read_file(out / "raw.json"));
  return run;
}

class PaluFullRank : public ::testing::TestWithParam<Model (*)()> {};

TEST_P(PaluFullRank, LogitsEqualTheBaselineInEveryWorld) {
  HPCINFER_REQUIRE_DATA(kWiki);
  HPCINFER_REQUIRE_DATA("models/stories260K/tok512.bin");
  const Model m = GetParam()();
  if (!fs::exists(m.path)) GTEST_SKIP() << m.path << " is absent";
  test::ScratchDir dir;
  const std::string palu = (dir / "palu").string();
  const auto c = compress(m, palu, "--ratio 1.0 --group-size " + std::to_string(m.group_size));
  ASSERT_EQ(c.exit_code, 0) << c.output;
  const auto config = nlohmann::json::parse(test::read_file(fs::path(palu) / "config.json"));
  EXPECT_EQ(config.at("palu").at("group_size").get<int>(), m.group_size);
  EXPECT_EQ(config.at("palu").at("calibration").at("tokens").get<int>(), 1024);
  const struct {
    const char* name;
    int tp, pp;
  } worlds[] = {{"single", 1, 1}, {"pp2", 1, 2}, {"tp2", 2, 1}};
  for (const auto& w : worlds) {
    SCOPED_TRACE(std::string(m.name) + " " + w.name);
    const RunOutput base = run_world(dir, m.path, std::string("base_") + w.name, w.tp, w.pp);
    const RunOutput lowrank = run_world(dir, palu, std::string("palu_") + w.name, w.tp, w.pp);
    ASSERT_EQ(base.ids.size(), 24u);
    EXPECT_EQ(lowrank.ids, base.ids);
    ASSERT_EQ(lowrank.logits.size(), base.logits.size());
    double worst = 0;
    for (size_t i = 0; i < base.logits.size(); ++i)
      worst = std::max(worst, std::abs(double(lowrank.logits[i]) - base.logits[i]));
    EXPECT_LE(worst, 1e-4);
    std::printf("%s %s: max |logit palu(1.0) - baseline| = %.3g over %zu logits\n", m.name, w.name, worst,
                base.logits.size());
  }
}

INSTANTIATE_TEST_SUITE_P(Models, PaluFullRank, ::testing::Values(&stories, &llama3_reference),
                         [](const auto& info) { return std::string(info.index == 0 ? "stories260K" : "llama3_gqa"); });

// Eight prompts through continuous batching (batches that mix several sequences' prefills and decode steps: the
// keys are rebuilt per sequence run), ratio 1.0 against the baseline: the same greedy tokens, prompt by prompt.
TEST(Palu, ContinuousBatchingGivesTheBaselineTokensAtFullRank) {
  HPCINFER_REQUIRE_DATA(kWiki);
  HPCINFER_REQUIRE_DATA("prompts/stories8.jsonl");
  const Model m = stories();
  test::ScratchDir dir;
  const std::string palu = (dir / "palu").string();
  ASSERT_EQ(compress(m, palu, "--ratio 1.0 --group-size 4").exit_code, 0);
  const std::string config = shell_quote(std::string(HPCINFER_SOURCE_DIR) + "/configs/local_single.yaml");
  for (const auto& [name, model] : {std::pair{"base", m.path}, std::pair{"palu", palu}}) {
    const auto r = run_command(test::bin() + " run " + config + " --set model.path=" + shell_quote(model) +
                               " --set model.tokenizer=" + shell_quote(m.tokenizer) + " --set inputs.prompts=" +
                               shell_quote((test::shared_data() / "prompts/stories8.jsonl").string()) +
                               " --set batching.batch_size=3 --set outputs.dir=" + shell_quote((dir / name).string()) +
                               " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  const auto cmp = run_command(test::bin() + " compare --require-match " + shell_quote((dir / "base").string()) + " " +
                               shell_quote((dir / "palu").string()) + " 2>&1");
  EXPECT_EQ(cmp.exit_code, 0) << cmp.output;
  EXPECT_NE(cmp.output.find("8 prompts, 8 exact matches"), std::string::npos) << cmp.output;
}

TEST(Palu, CacheHoldsTheLatentsAtRatio07) {
  HPCINFER_REQUIRE_DATA(kWiki);
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  Model m = stories();
  m.group_size = 4;
  test::ScratchDir dir;
  const std::string palu = (dir / "palu").string();
  const auto c = compress(m, palu, "--ratio 0.7 --group-size 4");
  ASSERT_EQ(c.exit_code, 0) << c.output;
  // stories260K: 5 layers, 4 kv heads of 8 -> one group of 32 rows; 0.7 * 32 = 22.4 -> 24 (multiples of 8).
  const auto config = nlohmann::json::parse(test::read_file(fs::path(palu) / "config.json"));
  const auto rk = config["palu"]["rank_k"].get<std::vector<int>>(), rv = config["palu"]["rank_v"].get<std::vector<int>>();
  ASSERT_EQ(rk.size(), 5u);
  double formula = 0;
  for (size_t l = 0; l < rk.size(); ++l) formula += 4.0 * 1 * (rk[l] + rv[l]);
  EXPECT_EQ(rk[0], 24);
  EXPECT_DOUBLE_EQ(formula, 5 * 4.0 * 48);
  const double baseline = 5 * 2 * 4.0 * 32;  // layers x (k, v) x f32 x kv heads * head_dim
  EXPECT_NEAR(formula / baseline, 0.75, 1e-9);

  dir.write("plan.yaml", "model:\n  path: " + palu + "\nplugins:\n  strategy: pp\nworld:\n  pp: 2\n");
  const auto plan = run_command(test::bin() + " plan --show --json " + shell_quote((dir / "plan.yaml").string()));
  ASSERT_EQ(plan.exit_code, 0) << plan.output;
  double planned = 0;
  for (const auto& r : nlohmann::json::parse(plan.output)) planned += r.at("kv_bytes_per_token").get<double>();
  EXPECT_NEAR(planned / formula, 1.0, 0.05) << "plan --show: " << planned << " bytes per token";

  const RunOutput run = run_world(dir, palu, "palu_pp2", 1, 2);
  double measured = 0;
  for (const auto& r : run.raw.at("ranks")) measured += r.at("kv_bytes_per_token").get<double>();
  EXPECT_NEAR(measured / formula, 1.0, 0.05) << "run metrics: " << measured << " bytes per token";
  std::printf("KV bytes per token at ratio 0.7: formula %.0f, plan %.0f, run %.0f, baseline %.0f\n", formula, planned,
              measured, baseline);
}

TEST(Palu, BadInputGetsErrorsNamingTheOption) {
  HPCINFER_REQUIRE_DATA(kWiki);
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  const Model m = stories();
  test::ScratchDir dir;
  struct Bad {
    std::string args, says;
  } cases[] = {
      {"--ratio 0 --group-size 2", "--ratio: must be in (0, 1]"},
      {"--ratio 1.5 --group-size 2", "--ratio: must be in (0, 1]"},
      {"--ratio 0.7 --group-size 3", "--group-size: 3 does not divide the 4 kv heads"},
      {"--ratio 0.7 --group-size 2 --calib-skip-tokens 100000000", "need 100001024"},
      {"--ratio 0.7 --group-size 2 --whitening pca", "--whitening: 'pca'"},
  };
  int i = 0;
  for (const Bad& b : cases) {
    const auto r = compress(m, (dir / ("bad" + std::to_string(i++))).string(), b.args);
    EXPECT_EQ(r.exit_code, 2) << b.args << "\n" << r.output;
    EXPECT_NE(r.output.find(b.says), std::string::npos) << b.args << "\n" << r.output;
  }
  const auto missing = run_command(test::bin() + " palu compress --model " + shell_quote(m.path) +
                                   " --calib /nonexistent/calib.txt --group-size 2 --out " +
                                   shell_quote((dir / "m").string()) + " 2>&1");
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find("--calib: /nonexistent/calib.txt: no such file"), std::string::npos) << missing.output;
  dir.write("short.txt", "Too short.");
  const auto shortfile = run_command(test::bin() + " palu compress --model " + shell_quote(m.path) + " --calib " +
                                     shell_quote((dir / "short.txt").string()) + " --group-size 2 --out " +
                                     shell_quote((dir / "s").string()) + " 2>&1");
  EXPECT_EQ(shortfile.exit_code, 2) << shortfile.output;
  EXPECT_NE(shortfile.output.find("short.txt has "), std::string::npos) << shortfile.output;

  // One group of 4 kv heads cannot be cut by tp = 2: refused before any weights move, naming the tp values that work.
  const std::string palu = (dir / "g4").string();
  ASSERT_EQ(compress(m, palu, "--ratio 0.5 --group-size 4").exit_code, 0);
  dir.write("tp2.yaml", "model:\n  path: " + palu + "\nplugins:\n  strategy: tp_pp\nworld:\n  tp: 2\n");
  const auto plan = run_command(test::bin() + " plan --show " + shell_quote((dir / "tp2.yaml").string()) + " 2>&1");
  EXPECT_NE(plan.exit_code, 0);
  EXPECT_NE(plan.output.find("would cut a palu group"), std::string::npos) << plan.output;
  EXPECT_NE(plan.output.find("tp values that work: 1"), std::string::npos) << plan.output;
  // A config.json whose palu ranks do not fit the heads names the key.
  auto cfg = nlohmann::json::parse(test::read_file(fs::path(palu) / "config.json"));
  cfg["palu"]["rank_k"][1] = 999;
  std::ofstream(fs::path(palu) / "config.json") << cfg.dump();
  dir.write("single.yaml", "model:\n  path: " + palu + "\n");
  const auto bad = run_command(test::bin() + " plan --show " + shell_quote((dir / "single.yaml").string()) + " 2>&1");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("rank_k: 999 must be in [1, 32]"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace hpcinfer
