// Distributed runs as real processes on this machine (hpcinfer launch, mpirun): greedy completions must equal the
// single-process ones token for token; failures (dead rank, missing peer, bad world) must end with clear errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>
#include <nlohmann/json.hpp>

#include "support/test_support.hpp"

using namespace hpcinfer::test;
namespace fs = std::filesystem;

namespace {

using Completions = std::map<std::string, std::vector<int>>;
// Per request, per generated token: the top-k (token, logprob) pairs of outputs.logprobs.
using TopLogprobs = std::map<std::string, std::vector<std::vector<std::pair<int, double>>>>;

Completions read_completions(const fs::path& file) {
  Completions out;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) {
      auto j = nlohmann::json::parse(line);
      out[j["id"].get<std::string>()] = j["token_ids"].get<std::vector<int>>();
    }
  return out;
}

TopLogprobs read_top_logprobs(const fs::path& file) {
  TopLogprobs out;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) {
      auto j = nlohmann::json::parse(line);
      auto& tokens = out[j["id"].get<std::string>()];
      for (const auto& t : j.at("logprobs")) tokens.push_back(t.at("top").get<std::vector<std::pair<int, double>>>());
    }
  return out;
}

// The k-th most likely logprob of each step must agree within tol. The token ids must agree too, except where
// two candidates are closer than 2 tol (a near-tie may swap places when the summation order changes).
void expect_logprobs_near(const TopLogprobs& a, const TopLogprobs& b, double tol, int k) {
  ASSERT_EQ(a.size(), b.size());
  double worst = 0;
  for (const auto& [id, steps] : a) {
    const auto& other = b.at(id);
    ASSERT_EQ(steps.size(), other.size()) << id;
    for (size_t t = 0; t < steps.size(); ++t) {
      ASSERT_EQ(steps[t].size(), size_t(k)) << id << " token " << t;
      ASSERT_EQ(other[t].size(), size_t(k)) << id << " token " << t;
      for (size_t r = 0; r < size_t(k); ++r) {
        const double d = std::abs(steps[t][r].second - other[t][r].second);
        worst = std::max(worst, d);
        EXPECT_LE(d, tol) << id << " token " << t << " rank " << r;
        const bool near_tie = (r > 0 && steps[t][r - 1].second - steps[t][r].second < 2 * tol) ||
                              (r + 1 < size_t(k) && steps[t][r].second - steps[t][r + 1].second < 2 * tol);
        if (!near_tie) EXPECT_EQ(steps[t][r].first, other[t][r].first) << id << " token " << t << " rank " << r;
      }
    }
  }
  std::printf("largest |logprob difference| over the top-%d of every step: %.3g (tolerance %.3g)\n", k, worst, tol);
}

constexpr int kTopLogprobs = 5;
// Logprob tolerance of tp runs. pp runs must be bitwise equal (tolerance 0): matmul results do not depend on the
// batch composition or the thread count (test_kernels), and a stage runs the same kernels on the same rows as the
// single process. tp changes the summation order: each o and down projection becomes tp partial dot products summed
// by an all-reduce, so the residual stream differs by f32 rounding (~1e-7 relative per layer); the head is
// replicated, so nothing else changes. Seen: ~7e-6 on stories260K. 1e-4 leaves a margin and still catches a real
// error (a wrong shard or a missing all-reduce moves logprobs by far more than 1e-2).
constexpr double kTpLogprobTol = 1e-4;

// A config for a model (HF dir or .bin) + tokenizer, 8 prompts, greedy, top-5 logprobs per token.
std::string write_config(const ScratchDir& dir, const std::string& model, const std::string& tokenizer, int tokens,
                         const std::string& extra = "") {
  const std::string text = "model:\n  path: " + model + "\n  tokenizer: " + tokenizer +
                           "\nworld:\n  timeout_s: 20\ninputs:\n  prompts: " +
                           (shared_data() / "prompts/stories8.jsonl").string() +
                           "\ngeneration:\n  max_new_tokens: " + std::to_string(tokens) +
                           "\n  temperature: 0\nbatching:\n  batch_size: 4\n  micro_batches: 2\noutputs:\n  logprobs: " +
                           std::to_string(kTopLogprobs) + "\n" + extra;
  dir.write("exp.yaml", text);
  return (dir / "exp.yaml").string();
}

struct Case {
  const char* name;
  const char* comm;
  int tp, pp;
  const char* model;  // "stories" or a make-model preset
  const char* weights = "";  // a weights plugin for both runs ("": the model's default)
};

std::string case_name(const ::testing::TestParamInfo<Case>& i) { return i.param.name; }

class DistributedEqualsSingle : public ::testing::TestWithParam<Case> {};

TEST_P(DistributedEqualsSingle, GreedyTokensAndLogprobsMatch) {
  const Case c = GetParam();
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  const fs::path tok = shared_data() / "models/stories260K/tok512.bin";
  ScratchDir dir;
  std::string model = (shared_data() / "models/stories260K/stories260K.bin").string();
  if (std::string(c.model) != "stories") {
    model = (dir / "model").string();
    auto r = run_command(bin() + " make-model --preset " + c.model + " --out " + model + " --seed 7");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  if (std::string(c.comm) == "mpi" && run_command("command -v mpirun").exit_code != 0)
    GTEST_SKIP() << "mpirun not found (Debian openmpi-bin): the mpi transport cannot be launched here";
  if (std::string(c.comm) == "mpi" && !std::filesystem::exists(std::string(HPCINFER_PLUGIN_DIR) + "/libhpcinfer_comm_mpi.so"))
    GTEST_SKIP() << "this build has no mpi plugin (HPCINFER_WITH_MPI=OFF, as in the TSan build)";
  const std::string cfg =
      write_config(dir, model, tok.string(), 24, *c.weights ? "plugins:\n  weights: " + std::string(c.weights) + "\n" : "");
  auto single = run_command(bin() + " run " + cfg + " --set outputs.dir=" + (dir / "single").string());
  ASSERT_EQ(single.exit_code, 0) << single.output;
  const std::string sets = " --set world.tp=" + std::to_string(c.tp) + " --set world.pp=" + std::to_string(c.pp) +
                           " --set plugins.comm=" + c.comm + " --set plugins.strategy=" + (c.tp > 1 ? "tp_pp" : "pp") +
                           " --set outputs.dir=" + (dir / "dist").string();
  const int n = c.tp * c.pp;
  CommandResult dist;
  // mpi: the pp case through `hpcinfer launch` (which starts mpirun itself), the tp case by mpirun directly.
  if (std::string(c.comm) == "mpi" && c.tp > 1)
    dist = run_command("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun --allow-run-as-root "
                       "--oversubscribe -n " + std::to_string(n) + " " + bin() + " run " + cfg + sets);
  else
    dist = run_command(bin() + " launch -n " + std::to_string(n) + " " + cfg + sets);
  ASSERT_EQ(dist.exit_code, 0) << dist.output;
  Completions a = read_completions(dir / "single/completions.jsonl"), b = read_completions(dir / "dist/completions.jsonl");
  ASSERT_EQ(a.size(), 8u);
  EXPECT_EQ(a, b);
  const TopLogprobs la = read_top_logprobs(dir / "single/completions.jsonl");
  const TopLogprobs lb = read_top_logprobs(dir / "dist/completions.jsonl");
  expect_logprobs_near(la, lb, c.tp > 1 ? kTpLogprobTol : 0.0, kTopLogprobs);
  for (int r = 0; r < n; ++r) EXPECT_TRUE(fs::exists(dir / "dist/metrics" / ("rank_" + std::to_string(r) + ".json"))) << r;
}

INSTANTIATE_TEST_SUITE_P(
    Worlds, DistributedEqualsSingle,
    ::testing::Values(Case{"gloo_pp2_stories", "gloo", 1, 2, "stories"}, Case{"gloo_pp4_stories", "gloo", 1, 4, "stories"},
                      Case{"gloo_tp2_stories", "gloo", 2, 1, "stories"}, Case{"gloo_tp2pp2_stories", "gloo", 2, 2, "stories"},
                      Case{"gloo_pp2_gqa_odd_layers", "gloo", 1, 2, "tiny-gqa"},
                      Case{"gloo_tp2_gqa", "gloo", 2, 1, "tiny-gqa"}, Case{"gloo_tp2pp2_gqa", "gloo", 2, 2, "tiny-gqa"},
                      Case{"gloo_tp2pp2_qwen3", "gloo", 2, 2, "tiny-qwen3"},
                      Case{"mpi_pp2_stories", "mpi", 1, 2, "stories"}, Case{"mpi_tp2_gqa", "mpi", 2, 1, "tiny-gqa"},
                      // int4 shards: pp bitwise; tp on 32-column boundaries (tiny-qwen3: 64 / 192 wide) holds the single process's blocks
                      Case{"gloo_pp2_stories_int4", "gloo", 1, 2, "stories", "int4"},
                      Case{"gloo_tp2pp2_qwen3_int4", "gloo", 2, 2, "tiny-qwen3", "int4"}),
    case_name);

// Vocab-parallel embedding and head (tp_pp's default): each tp rank holds vocab / tp rows of both; the lookup's
// partial rows are summed, the head's logit columns gathered. A rank's logits are then the unsplit head's, exactly:
// tokens and logprobs equal world.vocab_parallel: false bitwise, and tp=1 within 1e-5 (what remains is the layers'
// all-reduce order). stories260K: tied embeddings (the head reuses the embedding's shard); tiny-odd: a prime vocab
// (509 over 3 ranks: 169 / 170 / 170 rows, an uneven gather) and one kv head replicated over tp = 3.
TEST(VocabParallel, ShardedHeadAndEmbeddingGiveTheUnshardedTokensAndLogprobs) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  const fs::path tok = shared_data() / "models/stories260K/tok512.bin";
  ScratchDir dir;
  auto r = run_command(bin() + " make-model --preset tiny-odd --out " + (dir / "odd").string() + " --seed 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  struct Model { std::string path; int tp; const char* extra; };
  const Model models[] = {{(shared_data() / "models/stories260K/stories260K.bin").string(), 2, ""},
                          {(dir / "odd").string(), 3, " --set world.replicate_kv_heads=true"}};
  for (const Model& m : models) {
    SCOPED_TRACE(m.path);
    const std::string cfg = write_config(dir, m.path, tok.string(), 16);
    const std::string tp = " --set plugins.strategy=tp_pp --set world.tp=" + std::to_string(m.tp) + m.extra;
    auto single = run_command(bin() + " run " + cfg + " --set outputs.dir=" + (dir / "single").string());
    ASSERT_EQ(single.exit_code, 0) << single.output;
    auto whole = run_command(bin() + " launch -n " + std::to_string(m.tp) + " " + cfg + tp +
                             " --set world.vocab_parallel=false --set outputs.dir=" + (dir / "whole").string());
    ASSERT_EQ(whole.exit_code, 0) << whole.output;
    auto split = run_command(bin() + " launch -n " + std::to_string(m.tp) + " " + cfg + tp +
                             " --set outputs.dir=" + (dir / "split").string());
    ASSERT_EQ(split.exit_code, 0) << split.output;
    const Completions c1 = read_completions(dir / "single/completions.jsonl");
    ASSERT_EQ(c1.size(), 8u);
    EXPECT_EQ(read_completions(dir / "split/completions.jsonl"), c1);
    EXPECT_EQ(read_completions(dir / "whole/completions.jsonl"), c1);
    const TopLogprobs ls = read_top_logprobs(dir / "split/completions.jsonl");
    expect_logprobs_near(read_top_logprobs(dir / "whole/completions.jsonl"), ls, 0.0, kTopLogprobs);
    expect_logprobs_near(read_top_logprobs(dir / "single/completions.jsonl"), ls, 1e-5, kTopLogprobs);
    // Each rank holds a share of the embedding/head: less than the replicated run's ranks.
    for (int k = 0; k < m.tp; ++k) {
      const std::string f = "metrics/rank_" + std::to_string(k) + ".json";
      const auto a = nlohmann::json::parse(read_file(dir / "split" / f)), b = nlohmann::json::parse(read_file(dir / "whole" / f));
      EXPECT_LT(a["weight_bytes"].get<double>(), b["weight_bytes"].get<double>()) << k;
    }
    for (const char* d : {"single", "whole", "split"}) fs::remove_all(dir / d);
  }
}

// Bytes that left a namespace through its veth, as tests/scripts/two_hosts_netns.sh prints them.
long long veth_tx_bytes(const std::string& script_output, const std::string& host) {
  const std::string key = "veth_tx_bytes " + host + " ";
  const size_t at = script_output.find(key);
  return at == std::string::npos ? -1 : std::stoll(script_output.substr(at + key.size()));
}

// Two hosts: rank 0 and rank 1 in separate network namespaces joined by a veth pair, rendezvous through our
// TcpStore at 10.77.0.1, gloo bound to the veth (world.interface), each "host" with its own results directory.
TEST(DistributedTwoHosts, GlooPp2BetweenNetworkNamespacesEqualsSingle) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  ScratchDir dir;
  const std::string cfg = write_config(dir, (shared_data() / "models/stories260K/stories260K.bin").string(),
                                       (shared_data() / "models/stories260K/tok512.bin").string(), 24);
  const std::string script = std::string(HPCINFER_SOURCE_DIR) + "/tests/scripts/two_hosts_netns.sh";
  auto r = run_command("bash " + script + " " + bin() + " " + cfg + " " + (dir / "hosts").string() +
                       " --set world.timeout_s=20 --set threads=1");
  if (r.exit_code == 77) GTEST_SKIP() << r.output;
  ASSERT_EQ(r.exit_code, 0) << r.output << "\n--- host_a:\n" << read_file(dir / "hosts/host_a/rank_0.log")
                            << "\n--- host_b:\n" << read_file(dir / "hosts/host_b/rank_1.log");
  auto single = run_command(bin() + " run " + cfg + " --set outputs.dir=" + (dir / "single").string());
  ASSERT_EQ(single.exit_code, 0) << single.output;

  const fs::path a = dir / "hosts/host_a", b = dir / "hosts/host_b";
  const Completions want = read_completions(dir / "single/completions.jsonl");
  ASSERT_EQ(want.size(), 8u);
  EXPECT_EQ(read_completions(b / "completions.jsonl"), want);  // the last stage (rank 1) writes them
  expect_logprobs_near(read_top_logprobs(dir / "single/completions.jsonl"), read_top_logprobs(b / "completions.jsonl"),
                       0.0, kTopLogprobs);
  EXPECT_FALSE(fs::exists(a / "completions.jsonl"));
  // No file store anywhere: the ranks met through the TcpStore only.
  EXPECT_FALSE(fs::exists(a / ".rendezvous"));
  EXPECT_FALSE(fs::exists(b / ".rendezvous"));
  // The pipeline's bytes went through the veth: what each namespace sent out of it covers what its rank's
  // communicator counted as sent (the rest is the store's requests and TCP/IP headers).
  const auto m0 = nlohmann::json::parse(read_file(a / "metrics/rank_0.json"));
  const auto m1 = nlohmann::json::parse(read_file(b / "metrics/rank_1.json"));
  EXPECT_EQ(m0["comm_plugin"], "gloo");
  EXPECT_GT(m0["comm_bytes_sent"].get<long long>(), 0);
  EXPECT_GT(m1["comm_bytes_sent"].get<long long>(), 0);
  EXPECT_GE(veth_tx_bytes(r.output, "host_a"), m0["comm_bytes_sent"].get<long long>()) << r.output;
  EXPECT_GE(veth_tx_bytes(r.output, "host_b"), m1["comm_bytes_sent"].get<long long>()) << r.output;
  // The namespaces are gone (the script's trap).
  const size_t at = r.output.find("netns ");
  ASSERT_NE(at, std::string::npos) << r.output;
  std::istringstream names(r.output.substr(at + 6));
  std::string ns_a, ns_b;
  names >> ns_a >> ns_b;
  const std::string left = run_command("ip netns list").output;
  EXPECT_EQ(left.find(ns_a), std::string::npos) << left;
  EXPECT_EQ(left.find(ns_b), std::string::npos) << left;
}

// hpcinfer launch splits the cores among the ranks that compute at the same time: tp x min(pp, micro_batches).
TEST(DistributedLaunch, CoresAreSplitAmongTheRanksThatWorkAtTheSameTime) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  ScratchDir dir;
  const std::string cfg = write_config(dir, (shared_data() / "models/stories260K/stories260K.bin").string(),
                                       (shared_data() / "models/stories260K/tok512.bin").string(), 4);
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  struct Want {
    int micro_batches, threads;
  };
  // One micro-batch: the two stages take turns, each may use every core. Two: both work at once, half each.
  for (const Want w : {Want{1, cores}, Want{2, std::max(1, cores / 2)}}) {
    const fs::path out = dir / ("m" + std::to_string(w.micro_batches));
    auto r = run_command(bin() + " launch -n 2 " + cfg + " --set world.pp=2 --set batching.micro_batches=" +
                         std::to_string(w.micro_batches) + " --set outputs.dir=" + out.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    for (int rank = 0; rank < 2; ++rank) {
      const auto m = nlohmann::json::parse(read_file(out / "metrics" / ("rank_" + std::to_string(rank) + ".json")));
      EXPECT_EQ(m["threads"].get<int>(), w.threads) << "micro_batches " << w.micro_batches << " rank " << rank;
    }
  }
}

TEST(DistributedFailures, DeadRankIsNamedAndFinishedCompletionsStayOnDisk) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  ScratchDir dir;
  const std::string cfg = write_config(dir, (shared_data() / "models/stories260K/stories260K.bin").string(),
                                       (shared_data() / "models/stories260K/tok512.bin").string(), 8);
  // Sequential requests (batch 1); rank 0 (first stage) vanishes after 30 forward passes (~3 requests).
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_command("HPCINFER_FAULT_RANK=0 HPCINFER_FAULT_AFTER_PASSES=30 " + bin() + " launch -n 2 " + cfg +
                       " --set outputs.dir=" + (dir / "out").string() + " --set world.pp=2 --set world.timeout_s=5 --set batching.batch_size=1 --set batching.micro_batches=1");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_LT(secs, 20.0) << "survivors must give up within the timeout";
  const std::string log1 = read_file(dir / "out/ranks/rank_1.log");
  EXPECT_NE(log1.find("rank 0"), std::string::npos) << "the survivor's error must name the dead rank:\n" << log1;
  Completions done = read_completions(dir / "out/completions.jsonl");
  EXPECT_GE(done.size(), 1u);
  EXPECT_LT(done.size(), 8u);
}

TEST(DistributedFailures, RendezvousThatNeverCompletesTimesOut) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  ScratchDir dir;
  const std::string cfg = write_config(dir, (shared_data() / "models/stories260K/stories260K.bin").string(),
                                       (shared_data() / "models/stories260K/tok512.bin").string(), 4);
  const auto t0 = std::chrono::steady_clock::now();
  // Rank 0 of 2 alone: rank 1 never comes.
  auto r = run_command("HPCINFER_RANK=0 HPCINFER_WORLD_SIZE=2 HPCINFER_JOB_ID=lonely " + bin() + " run " + cfg +
                       " --set outputs.dir=" + (dir / "out").string() + " --set world.pp=2 --set world.timeout_s=2");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_LT(secs, 15.0);
  // The missing peer is named: as "rank 1" or as the rendezvous key rank 1 never wrote ("<prefix>/gloo/1").
  EXPECT_TRUE(r.output.find("rank 1") != std::string::npos || r.output.find("gloo/1'") != std::string::npos) << r.output;
}

TEST(DistributedFailures, WorldSizeThatDoesNotMatchTpTimesPpIsAConfigError) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  ScratchDir dir;
  const std::string cfg = write_config(dir, (shared_data() / "models/stories260K/stories260K.bin").string(),
                                       (shared_data() / "models/stories260K/tok512.bin").string(), 4);
  auto r = run_command(bin() + " launch -n 3 " + cfg + " --set world.pp=2");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("world."), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("3"), std::string::npos) << r.output;
}

TEST(DistributedFailures, LayerSplitThatDoesNotCoverTheModelIsRefused) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  ScratchDir dir;
  const std::string cfg = write_config(dir, (shared_data() / "models/stories260K/stories260K.bin").string(),
                                       (shared_data() / "models/stories260K/tok512.bin").string(), 4);
  auto r = run_command(bin() + " plan --show " + cfg + " --set world.pp=2 --set 'world.layer_split=[2,2]'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("covers 4 layers but the model has 5"), std::string::npos) << r.output;
}

TEST(DistributedFailures, TpThatDoesNotDivideHeadsListsWorkingValues) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  ScratchDir dir;
  const std::string cfg = write_config(dir, (shared_data() / "models/stories260K/stories260K.bin").string(),
                                       (shared_data() / "models/stories260K/tok512.bin").string(), 4);
  auto r = run_command(bin() + " plan --show " + cfg + " --set world.tp=3 --set plugins.strategy=tp_pp");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("tp values that work: 1, 2, 4"), std::string::npos) << r.output;
}

}  // namespace
