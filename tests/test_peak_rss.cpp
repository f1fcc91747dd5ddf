// Memory of a pipeline: in a pp=2 run of a random tinyllama-1.1b (bf16, 2.2 GB on disk) each rank's peak RSS must be
// at most 60% of the single process's, because each rank maps and packs only the tensors of its own layers; and the
// single process's peak is the packed weights (+ 15%), not the packed weights and the mapped file.
// Slow (about 15 s: writing the model takes most of it), so its ctest label is "slow" (ctest -L slow / -LE slow).
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "support/test_support.hpp"

using namespace hpcinfer::test;
namespace fs = std::filesystem;

namespace {

nlohmann::json metrics(const fs::path& run, int rank) {
  const fs::path f = run / "metrics" / ("rank_" + std::to_string(rank) + ".json");
  return nlohmann::json::parse(read_file(f));
}

TEST(PeakRss, EachPipelineRankUsesAtMost60PercentOfTheSingleProcess) {
  HPCINFER_SKIP_MEASUREMENT_WHEN_SANITIZED("peak RSS (shadow memory, quarantine)");
  const char* tokenizer_rel = "tokenizers/llama2-sentencepiece/tokenizer.model";
  HPCINFER_REQUIRE_DATA(tokenizer_rel);
  ScratchDir dir;  // the 2.2 GB model lives here and goes with it
  const std::string model = (dir / "tinyllama").string();
  auto made = run_command(bin() + " make-model --preset tinyllama-1.1b --seed 3 --out " + model);
  ASSERT_EQ(made.exit_code, 0) << made.output;
  dir.write("prompts.jsonl", "{\"id\": \"a\", \"prompt\": \"Once upon a time\"}\n"
                             "{\"id\": \"b\", \"prompt\": \"The capital of France is\"}\n");
  // Few prompts and tokens: the weights dominate the RSS, the KV cache is tiny.
  dir.write("exp.yaml", "model:\n  path: " + model + "\n  tokenizer: " + (shared_data() / tokenizer_rel).string() +
                            "\nworld:\n  timeout_s: 60\ninputs:\n  prompts: " + (dir / "prompts.jsonl").string() +
                            "\ngeneration:\n  max_new_tokens: 2\nbatching:\n  batch_size: 2\n  micro_batches: 2\n");
  const std::string cfg = (dir / "exp.yaml").string();
  auto single = run_command(bin() + " run " + cfg + " --set outputs.dir=" + (dir / "single").string());
  ASSERT_EQ(single.exit_code, 0) << single.output;
  auto pp = run_command(bin() + " launch -n 2 " + cfg + " --set world.pp=2 --set outputs.dir=" + (dir / "pp2").string());
  ASSERT_EQ(pp.exit_code, 0) << pp.output;

  const auto s = metrics(dir / "single", 0);
  const double single_rss = s["peak_rss_bytes"].get<double>();
  const double single_weights = s["weight_bytes"].get<double>();
  EXPECT_GT(single_weights, 2.0e9) << "a bf16 tinyllama-1.1b packs about 2.2 GB";
  EXPECT_GE(single_rss, single_weights);
  // Loading holds the packed weights, not them and the file's pages too (each tensor's mapped pages are dropped once
  // packed): the peak is at most 1.15 x (packed weights + KV cache), the process's code and buffers included.
  const double kv = s["kv_cache_bytes"].get<double>();
  std::printf("single process: peak RSS %.0f MiB, packed weights %.0f MiB, KV cache %.0f MiB\n", single_rss / 1048576,
              single_weights / 1048576, kv / 1048576);
  EXPECT_LE(single_rss, 1.15 * (single_weights + kv)) << "the file's pages stayed mapped beside the packed copy?";
  double rank_weights = 0;
  for (int r = 0; r < 2; ++r) {
    const auto m = metrics(dir / "pp2", r);
    const double rss = m["peak_rss_bytes"].get<double>();
    rank_weights += m["weight_bytes"].get<double>();
    std::printf("rank %d: peak RSS %.0f MiB = %.1f%% of the single process's %.0f MiB (weights %.0f MiB)\n", r,
                rss / 1048576, 100 * rss / single_rss, single_rss / 1048576, m["weight_bytes"].get<double>() / 1048576);
    EXPECT_LE(rss, 0.60 * single_rss) << "rank " << r << " layers " << m["layers"].dump();
  }
  // The two ranks together hold the model once, plus the small embedding/head overlap at most.
  EXPECT_LE(rank_weights, 1.05 * single_weights);
  EXPECT_GE(rank_weights, 0.95 * single_weights);
}

}  // namespace
