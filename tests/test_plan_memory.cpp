// hpcinfer plan as a memory planner: per-rank weights / KV cache / activations / workspace and FITS / DOES NOT FIT
// against --device-memory, on a config-only Llama-3-70B (no weights, no shared data needed).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/test_support.hpp"

namespace hpcinfer {
namespace {

class PlanMemory : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto r = test::run_command(test::bin() + " make-model --preset llama-3-70b --config-only --out " +
                                     test::shell_quote((dir_.path() / "70b").string()) + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    config_ = nlohmann::json::parse(test::read_file(dir_.path() / "70b/config.json"));
    dir_.write("plan.yaml", "model:\n  path: " + (dir_.path() / "70b").string() +
                                "\nplugins:\n  strategy: tp_pp\nworld:\n  tp: 8\n  pp: 1\n  vocab_parallel: false\n");
  }
  test::CommandResult plan(const std::string& extra) {
    return test::run_command("(" + test::bin() + " plan --show " + test::shell_quote((dir_.path() / "plan.yaml").string()) +
                             " --context 8192 --device-memory 80 " + extra + " 2>/dev/null)");
  }
  test::ScratchDir dir_;
  nlohmann::json config_;
};

TEST_F(PlanMemory, Llama3_70bTp8FitsIn80GbAndTp1DoesNot) {
  const double D = config_["hidden_size"], H = config_["intermediate_size"], V = config_["vocab_size"],
               L = config_["num_hidden_layers"], nh = config_["num_attention_heads"],
               nkv = config_["num_key_value_heads"];
  const double hd = D / nh;
  // bf16 matrices; norms (vectors) are f32.
  const double layer_matrices = L * (D * nh * hd * 2 + D * nkv * hd * 2 + 3 * D * H);
  const double embed_head = 2 * V * D;  // untied
  const double norms = (2 * L + 1) * D;
  const double model_bf16 = 2 * (layer_matrices + embed_head);
  ASSERT_NEAR(model_bf16, 2 * 70.55e9, 0.2e9);  // the preset is the 70B model

  auto r = plan("--json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json ranks = nlohmann::json::parse(r.output);
  ASSERT_EQ(ranks.size(), 8u);
  for (const nlohmann::json& k : ranks) {
    const double w = k.at("weight_bytes");
    // Layers split 8 ways; the embedding and output head are whole on every tp rank (tp_pp replicates them).
    EXPECT_NEAR(w, 2 * layer_matrices / 8 + 2 * embed_head + 4 * norms, 1e-6 * w) << k.at("rank");
    EXPECT_GT(w, model_bf16 / 8);
    EXPECT_LT(w, model_bf16 / 8 * 1.25);  // about an eighth
    const double kv = k.at("kv_cache_bytes");
    EXPECT_DOUBLE_EQ(kv, 2.0 * 4 * L * 8192 * (nkv / 8) * hd);  // f32 K and V, one kv head per rank
    EXPECT_GT(k.at("activation_bytes").get<double>(), 0);
    EXPECT_GE(k.at("workspace_bytes").get<double>(), 0);
    EXPECT_DOUBLE_EQ(k.at("total_bytes").get<double>(), w + kv + k.at("activation_bytes").get<double>() +
                                                            k.at("workspace_bytes").get<double>());
    EXPECT_EQ(k.at("fits"), true);
    EXPECT_EQ(k.at("memory_verdict"), "FITS");
  }

  r = plan("--set world.tp=1");
  ASSERT_EQ(r.exit_code, 0) << r.output;  // exit 0 either way
  EXPECT_NE(r.output.find("DOES NOT FIT"), std::string::npos) << r.output;
  r = plan("--set world.tp=1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json one = nlohmann::json::parse(r.output);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].at("fits"), false);
  EXPECT_NEAR(one[0].at("weight_bytes").get<double>(), model_bf16 + 4 * norms, 1e-6 * model_bf16);
  EXPECT_GT(one[0].at("total_bytes").get<double>(), 80e9);

  r = plan("");  // text: one verdict line per rank
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (int k = 0; k < 8; ++k)
    EXPECT_NE(r.output.find("rank " + std::to_string(k) + ": FITS in 80.00 GB"), std::string::npos) << r.output;
}

// Vocab-parallel (the tp_pp default): each tp rank holds vocab / 8 rows of the embedding and of the head instead of
// a whole 2.1 GB copy of each, and the plan says how the pieces are combined (an all-reduce after the lookup, an
// all-gather of the logits over the stage's group).
TEST_F(PlanMemory, VocabParallelHoldsAnEighthOfEmbeddingAndHeadPerRank) {
  const double D = config_["hidden_size"], H = config_["intermediate_size"], V = config_["vocab_size"],
               L = config_["num_hidden_layers"], nh = config_["num_attention_heads"],
               nkv = config_["num_key_value_heads"];
  const double hd = D / nh;
  const double layer_matrices = L * (D * nh * hd * 2 + D * nkv * hd * 2 + 3 * D * H);
  const double norms = (2 * L + 1) * D;
  auto r = plan("--set world.vocab_parallel=true --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json ranks = nlohmann::json::parse(r.output);
  ASSERT_EQ(ranks.size(), 8u);
  for (const nlohmann::json& k : ranks) {
    const double w = k.at("weight_bytes");
    EXPECT_NEAR(w, 2 * layer_matrices / 8 + 2 * 2 * V * D / 8 + 4 * norms, 1e-6 * w) << k.at("rank");
    const int t = k.at("tp_rank");
    for (const nlohmann::json& sh : k.at("shards"))
      if (sh.at("tensor") == "tok_embeddings" || sh.at("tensor") == "output") {
        EXPECT_EQ(sh.at("rows")[0].get<double>(), V * t / 8) << sh.dump();
        EXPECT_EQ(sh.at("rows")[1].get<double>(), V * (t + 1) / 8) << sh.dump();
      }
    int gathers = 0, embed_sums = 0;
    for (const nlohmann::json& st : k.at("steps")) {
      if (st.at("kind") == "allgather_cols" && st.at("anchor") == "head.logits") {
        ++gathers;
        EXPECT_EQ(st.at("sizes").size(), 8u);
      }
      if (st.at("kind") == "allreduce_sum" && st.at("anchor") == "embed.out") ++embed_sums;
    }
    EXPECT_EQ(gathers, 1) << k.dump();
    EXPECT_EQ(embed_sums, 1) << k.dump();
  }
}

}  // namespace
}  // namespace hpcinfer

namespace hpcinfer {
namespace {

// MoE and MLA in the planner: DeepSeek-V3 (config only: 671B parameters, 256 experts, MLA) as tp = 8 with the experts
// shared out (world.expert_parallel) on 2 pipeline stages of int8 weights: every rank holds 1/16 of the layers'
// weights (32 experts of each of its MoE layers) plus the whole latent KV cache of its layers (kv_lora 512 + rope 64
// f32 values per token and layer), and fits 80 GB; on one stage it needs more than 80 GB and fits 141.
TEST(PlanMemoryMoe, DeepSeekV3ExpertParallelOnOneAndTwoNodes) {
  test::ScratchDir dir;
  auto r = test::run_command(test::bin() + " make-model --preset deepseek-v3 --config-only --out " +
                             test::shell_quote((dir / "ds").string()) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  dir.write("p.yaml", "model:\n  path: " + (dir / "ds").string() +
                          "\nplugins:\n  strategy: tp_pp\n  weights: int8\nworld:\n  tp: 8\n  pp: 2\n  expert_parallel: true\n"
                          "batching:\n  batch_size: 1\n");
  auto plan = [&](const std::string& extra) {
    const auto res = test::run_command("(" + test::bin() + " plan --show " + test::shell_quote((dir / "p.yaml").string()) +
                                       " --context 8192 --device-memory 80 --json " + extra + " 2>/dev/null)");
    EXPECT_EQ(res.exit_code, 0) << res.output;
    return nlohmann::json::parse(res.output);
  };
  const nlohmann::json two = plan("");
  ASSERT_EQ(two.size(), 16u);
  for (const nlohmann::json& k : two) {
    const double w = k.at("weight_bytes");
    EXPECT_NEAR(w, 671.0e9 * 1.125 / 16, 0.05 * w) << k.at("rank");
    const int layers = k.at("layers")[1].get<int>() - k.at("layers")[0].get<int>();
    EXPECT_DOUBLE_EQ(k.at("kv_cache_bytes").get<double>(), 4.0 * (512 + 64) * 8192 * layers);
    EXPECT_EQ(k.at("fits"), true);
    for (const auto& [layer, ids] : k.at("experts").items()) EXPECT_EQ(ids.size(), 32u) << layer;
  }
  const nlohmann::json one = plan("--set world.pp=1");
  ASSERT_EQ(one.size(), 8u);
  EXPECT_EQ(one[0].at("fits"), false);
  EXPECT_GT(one[0].at("total_bytes").get<double>(), 80e9);
  EXPECT_LT(one[0].at("total_bytes").get<double>(), 141e9);
}

}  // namespace
}  // namespace hpcinfer
