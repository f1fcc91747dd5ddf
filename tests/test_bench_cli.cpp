// The benchmark commands' contracts: `bench --json` carries the fields the issue names with values that hold
// together (a fraction is its own ratio, every trial is reported), `bench-kernels` and `bench-stream` report every
// format. Small sizes: these check what is reported, not how fast (speed lives in bench/RESULTS.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "support/test_support.hpp"

using namespace hpcinfer;

namespace {
nlohmann::json run_json(const std::string& args) {
  auto r = test::run_command(test::bin() + " " + args + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return nlohmann::json::parse(r.output);
}
}  // namespace

TEST(BenchCli, JsonHasTheIssueFieldsAndTheyAgree) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  const auto d = test::shared_data() / "models/stories260K";
  for (const char* weights : {"bf16", "int8"}) {
    auto j = run_json("bench --model " + (d / "stories260K.bin").string() + " --tokenizer " + (d / "tok512.bin").string() +
                      " --weights " + weights + " --threads 1 --prompt-tokens 32 --decode-tokens 4 --trials 3 --batch 2" +
                      " --bw-mib 16 --json");
    for (const char* k : {"prefill_tok_s", "decode_tok_s", "decode_b8_tok_s", "mem_bw_gbs", "roofline_fraction",
                          "read_bw_gbs", "fma_peak_gflops", "bytes_per_token", "prefill_peak_fraction"})
      ASSERT_TRUE(j.contains(k) && j[k].get<double>() > 0) << weights << " " << k << ": " << j.dump();
    EXPECT_EQ(j["weights"], weights);
    EXPECT_EQ(j["decode_tok_s_trials"].size(), 3u);
    EXPECT_EQ(j["mem_bw_gbs_trials"].size(), 3u);
    // Bytes per token: at least the streamed weights; the roofline fraction is the per-trial ratio's median.
    EXPECT_GE(j["bytes_per_token"].get<double>(), j["weight_bytes_streamed"].get<double>());
    std::vector<double> f;
    for (size_t t = 0; t < 3; ++t)
      f.push_back(j["bytes_per_token"].get<double>() * j["decode_tok_s_trials"][t].get<double>() / 1e9 /
                  j["mem_bw_gbs_trials"][t].get<double>());
    std::sort(f.begin(), f.end());
    EXPECT_NEAR(j["roofline_fraction"].get<double>(), f[1], 1e-9 * f[1]);
  }
}

TEST(BenchCli, KernelsAndStreamReportEveryFormat) {
  auto k = run_json("bench-kernels --rows 32 --cols 256 --reps 4 --json");
  ASSERT_GE(k["kernels"].size(), 12u);  // f32, bf16, int8, int4 (and bf16dot with AVX512-BF16) at n = 1, 8, 64
  for (const auto& c : k["kernels"]) EXPECT_GT(c["gflops"].get<double>(), 0) << c.dump();
  auto s = run_json("bench-stream --layers 1 --rounds 2 --json");
  EXPECT_EQ(s["rounds"].size(), 2u);
  EXPECT_EQ(s["bf16_bytes"].get<double>(), 2.0 * 2048 * (2048 * 2 + 256 * 2 + 5632 * 3));  // one layer of tinyllama
  for (const char* key : {"read_gbs", "copy_gbs", "bf16_gbs", "int8_gbs", "int4_gbs", "int4_read_fraction"}) EXPECT_GT(s[key].get<double>(), 0) << key;
}

// bench-comm forks its ranks, checks one call's sums per size and prints one row per size; gloo (shared memory and
// TCP) both, 2 and 3 ranks.
TEST(BenchCli, BenchCommReportsEverySizeForGloo) {
  for (const char* shm : {"1", "0"})
    for (int n : {2, 3}) {
      const auto r = test::run_command(std::string("HPCINFER_GLOO_SHM=") + shm + " " + test::bin() +
                                       " bench-comm --comm gloo --ranks " + std::to_string(n) +
                                       " --min-bytes 8 --max-bytes 65536 --iters 2 --json");
      ASSERT_EQ(r.exit_code, 0) << r.output;
      const auto j = nlohmann::json::parse(r.output);
      EXPECT_EQ(j["ranks"].get<int>(), n);
      ASSERT_EQ(j["rows"].size(), 14u);  // 8 B .. 64 KiB, doubling
      for (const auto& row : j["rows"]) {
        EXPECT_GT(row["time_us"].get<double>(), 0.0);
        EXPECT_NEAR(row["busbw_GBps"].get<double>(), row["algbw_GBps"].get<double>() * 2.0 * (n - 1) / n, 1e-9);
      }
      EXPECT_NE(j["comm"].get<std::string>().find(std::string(shm) == "1" ? "shared memory" : "TCP"), std::string::npos);
    }
}
