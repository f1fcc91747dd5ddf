// The packed-weight cache (plugins.weights_cache, --weights-cache; core/runtime/packed_cache.hpp), as users meet it:
// the second load maps the file and computes bitwise the same logits for every weights plugin; a changed model file is
// a miss; a truncated, foreign or damaged file is reported and packed again (then whole again); a directory that
// cannot be written costs the cache, not the run; tp ranks each map their own shards and generate the same tokens.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <nlohmann/json.hpp>

#include "support/test_support.hpp"

namespace hpcinfer {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::run_command;
using test::ScratchDir;
using test::shared_data;

const char* kModel = "models/stories260K/stories260K.bin";

struct Load {
  test::CommandResult run;
  std::string logits;  // the --out file's bytes
};

Load logits(const fs::path& model, const std::string& weights, const fs::path& cache, const fs::path& out) {
  const std::string cache_flag = cache.empty() ? "" : " --weights-cache " + test::shell_quote(cache.string());
  Load l;
  l.run = run_command(test::bin() + " logits --model " + test::shell_quote(model.string()) + " " + weights +
                      " --threads 1 --tokens 1,200,300,400" + cache_flag + " --out " + out.string() + " 2>&1");
  if (l.run.exit_code == 0) l.logits = test::read_file(out);
  return l;
}

std::vector<fs::path> cache_files(const fs::path& dir) {
  std::vector<fs::path> out;
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path());
  return out;
}

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

TEST(PackedCache, SecondLoadMapsTheFileAndGivesBitwiseTheSameLogits) {
  HPCINFER_REQUIRE_DATA(kModel);
  ScratchDir dir;
  const fs::path model = shared_data() / kModel;
  int case_no = 0;
  for (const std::string weights : {"--weights f32", "--weights bf16", "--weights int8", "--weights int8 --group-size 0",
                                    "--weights int4"}) {
    const fs::path cache = dir / ("cache" + std::to_string(case_no++));
    const Load plain = logits(model, weights, "", dir / "plain.bin");
    ASSERT_EQ(plain.run.exit_code, 0) << plain.run.output;
    const Load miss = logits(model, weights, cache, dir / "miss.bin");
    ASSERT_EQ(miss.run.exit_code, 0) << miss.run.output;
    EXPECT_TRUE(has(miss.run.output, "(miss) written in")) << weights << ": " << miss.run.output;
    ASSERT_EQ(cache_files(cache).size(), 1u) << weights;
    const Load hit = logits(model, weights, cache, dir / "hit.bin");
    ASSERT_EQ(hit.run.exit_code, 0) << hit.run.output;
    EXPECT_TRUE(has(hit.run.output, "mapped from the packed-weight cache")) << weights << ": " << hit.run.output;
    EXPECT_FALSE(plain.logits.empty());
    EXPECT_EQ(miss.logits, plain.logits) << weights;
    EXPECT_EQ(hit.logits, plain.logits) << weights;
  }
}

TEST(PackedCache, OtherPluginOptionsAndChangedModelFilesAreMisses) {
  HPCINFER_REQUIRE_DATA(kModel);
  ScratchDir dir;
  const fs::path model = dir / "model.bin", cache = dir / "cache";
  fs::copy_file(shared_data() / kModel, model);
  ASSERT_EQ(logits(model, "--weights int8", cache, dir / "a.bin").run.exit_code, 0);
  const Load other_group = logits(model, "--weights int8 --group-size 64", cache, dir / "b.bin");
  EXPECT_TRUE(has(other_group.run.output, "(miss)")) << other_group.run.output;
  EXPECT_EQ(cache_files(cache).size(), 2u);
  fs::last_write_time(model, fs::last_write_time(model) + std::chrono::seconds(5));  // the model file changed
  const Load changed = logits(model, "--weights int8", cache, dir / "c.bin");
  EXPECT_TRUE(has(changed.run.output, "(miss)")) << changed.run.output;
  EXPECT_EQ(cache_files(cache).size(), 3u);
}

TEST(PackedCache, DamagedFilesAreReportedAndPackedAgain) {
  HPCINFER_REQUIRE_DATA(kModel);
  ScratchDir dir;
  const fs::path model = shared_data() / kModel, cache = dir / "cache";
  const Load first = logits(model, "--weights bf16", cache, dir / "first.bin");
  ASSERT_EQ(first.run.exit_code, 0) << first.run.output;
  const fs::path file = cache_files(cache).at(0);
  const auto whole = fs::file_size(file);
  const std::string bytes = test::read_file(file);
  struct Damage {
    std::string what, expect;
    std::function<void()> make;
  };
  const std::vector<Damage> damages = {
      {"cut in half", "is truncated", [&] { fs::resize_file(file, whole / 2); }},
      {"cut inside its header", "shorter than its header", [&] { fs::resize_file(file, 20); }},
      {"another file's magic", "no magic", [&] { std::ofstream(file, std::ios::binary | std::ios::in | std::ios::out) << "GGUF"; }},
      {"its index overwritten", "unreadable index", [&] {
         std::ofstream f(file, std::ios::binary | std::ios::in | std::ios::out);
         f.seekp(std::streamoff(whole - 10));
         f << "}}}}}}}}}}";
       }},
  };
  for (const Damage& d : damages) {
    std::ofstream(file, std::ios::binary) << bytes;  // whole again
    d.make();
    const Load again = logits(model, "--weights bf16", cache, dir / "again.bin");
    ASSERT_EQ(again.run.exit_code, 0) << d.what << ": " << again.run.output;
    EXPECT_TRUE(has(again.run.output, d.expect)) << d.what << ": " << again.run.output;
    EXPECT_TRUE(has(again.run.output, file.string())) << d.what << ": the message names the file";
    EXPECT_EQ(again.logits, first.logits) << d.what;
    EXPECT_EQ(fs::file_size(file), whole) << d.what << ": the file was written again";
    const Load hit = logits(model, "--weights bf16", cache, dir / "hit.bin");
    EXPECT_TRUE(has(hit.run.output, "mapped from")) << d.what << ": " << hit.run.output;
  }
}

TEST(PackedCache, AnUnwritableDirectoryCostsTheCacheNotTheRun) {
  HPCINFER_REQUIRE_DATA(kModel);
  ScratchDir dir;
  dir.write("not_a_dir", "x");
  const Load l = logits(shared_data() / kModel, "--weights bf16", dir / "not_a_dir" / "cache", dir / "out.bin");
  ASSERT_EQ(l.run.exit_code, 0) << l.run.output;
  EXPECT_TRUE(has(l.run.output, "cannot write the packed-weight cache")) << l.run.output;
  EXPECT_FALSE(l.logits.empty());
}

TEST(PackedCache, TensorParallelRanksEachMapTheirOwnShards) {
  HPCINFER_REQUIRE_DATA(kModel);
  ScratchDir dir;
  const fs::path m = shared_data() / "models/stories260K";
  dir.write("exp.yaml", "model:\n  path: " + (m / "stories260K.bin").string() + "\n  tokenizer: " +
                            (m / "tok512.bin").string() + "\nworld:\n  timeout_s: 20\n  tp: 2\nthreads: 1\n"
                            "plugins:\n  strategy: tp_pp\n  comm: gloo\n  weights: int8\n  weights_cache: " +
                            (dir / "cache").string() + "\ninputs:\n  prompts: " +
                            (shared_data() / "prompts/stories8.jsonl").string() +
                            "\ngeneration:\n  max_new_tokens: 8\n  temperature: 0\n");
  std::vector<std::string> completions;
  for (const char* run : {"first", "second"}) {
    auto r = run_command(test::bin() + " launch -n 2 " + (dir / "exp.yaml").string() + " --set outputs.dir=" +
                         (dir / run).string() + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    for (int rank : {0, 1}) {
      const json metrics = json::parse(test::read_file(dir / run / "metrics" / ("rank_" + std::to_string(rank) + ".json")));
      EXPECT_EQ(metrics.value("weight_cache", ""), std::string(run) == "first" ? "miss" : "hit") << run << " rank " << rank;
    }
    std::istringstream lines(test::read_file(dir / run / "completions.jsonl"));
    std::string texts;
    for (std::string l; std::getline(lines, l);) {
      const json c = json::parse(l);
      texts += c.at("id").get<std::string>() + ": " + c.at("completion").get<std::string>() + "\n";
    }
    EXPECT_FALSE(texts.empty());
    completions.push_back(texts);
  }
  EXPECT_EQ(cache_files(dir / "cache").size(), 2u);  // one file per rank's shards
  EXPECT_EQ(completions[0], completions[1]);
}

}  // namespace
}  // namespace hpcinfer
