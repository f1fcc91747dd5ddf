// hpcinfer sweep and report end to end on stories260K (../shared/data): a two-point sweep (world 1 and pp=2, a few
// tokens) runs and writes its index and run directories; a point whose outputs are damaged is redone on the next
// run while the finished one is left alone (resume); --dry-run runs nothing; the report's speedup equals the one
// computed here from the raw files, its correctness table says the pp=2 tokens equal world=1's, and its PNG plots are
// real PNG files (skipped with a message when matplotlib is not importable).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "support/csv_rows.hpp"
#include "support/test_support.hpp"

using namespace hpcinfer::test;
namespace fs = std::filesystem;

namespace {

class TinySweep : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path d = shared_data();
    if (!fs::exists(d / "models/stories260K/stories260K.bin"))
      GTEST_SKIP() << "reference data absent: " << (d / "models/stories260K/stories260K.bin").string();
    dir_.write("base.yaml", "model:\n  path: " + (d / "models/stories260K/stories260K.bin").string() +
                                "\n  tokenizer: " + (d / "models/stories260K/tok512.bin").string() +
                                "\nplugins: {comm: gloo, weights: f32, strategy: pp}\n"
                                "world: {tp: 1, pp: 1, timeout_s: 20}\n"
                                "inputs: {prompts: " + (d / "prompts/stories8.jsonl").string() + "}\n"
                                "generation: {max_new_tokens: 6, temperature: 0.0, seed: 1}\n"
                                "batching: {batch_size: 8, micro_batches: 1}\n");
    dir_.write("tiny.yaml", "experiment: tiny\nkind: strong_scaling\nbase: " + (dir_ / "base.yaml").string() +
                                "\noutput_root: " + (dir_ / "results").string() +
                                "\npoints:\n  - {world.pp: 1}\n  - {world.pp: 2, batching.micro_batches: 2}\n");
  }
  CommandResult sweep(const std::string& extra = "") {
    return run_command(shell_quote(bin()) + " sweep " + shell_quote((dir_ / "tiny.yaml").string()) + extra);
  }
  fs::path exp() const { return dir_ / "results/tiny"; }

  ScratchDir dir_;
};

fs::file_time_type mtime(const fs::path& p) { return fs::last_write_time(p); }

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(read_file(p)); }

std::map<std::string, std::vector<int>> tokens_of(const fs::path& completions) {
  std::map<std::string, std::vector<int>> out;
  std::ifstream in(completions);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) {
      const auto j = nlohmann::json::parse(line);
      out[j["id"].get<std::string>()] = j["token_ids"].get<std::vector<int>>();
    }
  return out;
}

// tokens/s of one run from its raw files: completion tokens / the slowest rank's engine_wall_s.
double raw_tokens_per_s(const fs::path& run, int world) {
  double tokens = 0, wall = 0;
  std::ifstream in(run / "completions.jsonl");
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) tokens += double(nlohmann::json::parse(line)["token_ids"].size());
  for (int r = 0; r < world; ++r)
    wall = std::max(wall, read_json(run / "metrics" / ("rank_" + std::to_string(r) + ".json"))["engine_wall_s"].get<double>());
  return tokens / wall;
}

TEST_F(TinySweep, DryRunListsPointsAndRunsNothing) {
  const auto r = sweep(" --dry-run");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("pp-1_r0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("pp-2_micro_batches-2_r0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("launch -n 2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("2 runs (2 points x 1 repeats), 0 finished, 2 to run"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(exp())) << "a dry run must write nothing";

  const auto s = sweep(" --dry-run --slurm");
  ASSERT_EQ(s.exit_code, 0) << s.output;
  EXPECT_NE(s.output.find("sbatch --parsable"), std::string::npos) << s.output;
  EXPECT_NE(s.output.find("--ntasks=2"), std::string::npos) << s.output;
  EXPECT_NE(s.output.find("HPCINFER_RUN_ID=pp-2_micro_batches-2_r0"), std::string::npos) << s.output;
  EXPECT_NE(s.output.find("slurm/submit.sbatch"), std::string::npos) << s.output;
  EXPECT_FALSE(fs::exists(exp()));
}

TEST_F(TinySweep, RunsWritesIndexAndResumesOnlyTheDamagedPoint) {
  const auto first = sweep();
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("[2/2]"), std::string::npos) << "progress lines on stderr:\n" << first.output;
  EXPECT_NE(first.output.find("ETA"), std::string::npos) << first.output;
  const auto index = read_json(exp() / "sweep.json");
  ASSERT_EQ(index["points"].size(), 2u);
  for (const auto& p : index["points"]) {
    EXPECT_EQ(p["status"], "done") << p.dump();
    const fs::path run = exp() / p["run_id"].get<std::string>();
    EXPECT_TRUE(fs::exists(run / "completions.jsonl")) << run;
    for (int r = 0; r < p["world"].get<int>(); ++r)
      EXPECT_TRUE(fs::exists(run / "metrics" / ("rank_" + std::to_string(r) + ".json"))) << run << " rank " << r;
  }
  EXPECT_EQ(index["points"][1]["world"], 2);
  EXPECT_EQ(index["points"][1]["overrides"]["world.pp"], "2");

  // A second run with nothing damaged runs nothing.
  const auto again = sweep();
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("2 finished, 0 to run"), std::string::npos) << again.output;

  // Damage the pp=2 point as a killed run would leave it: one rank's metrics missing.
  const fs::path kept = exp() / "pp-1_r0/completions.jsonl";
  const auto kept_time = mtime(kept);
  const std::string kept_text = read_file(kept);
  const auto kept_tokens = tokens_of(kept);
  ASSERT_EQ(kept_tokens.size(), 8u);
  fs::remove(exp() / "pp-2_micro_batches-2_r0/metrics/rank_1.json");
  const auto resumed = sweep();
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("1 finished, 1 to run"), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("[1/1] pp-2_micro_batches-2_r0: done"), std::string::npos) << resumed.output;
  EXPECT_EQ(resumed.output.find("pp-1_r0: done"), std::string::npos) << "the finished point ran again:\n" << resumed.output;
  EXPECT_TRUE(fs::exists(exp() / "pp-2_micro_batches-2_r0/metrics/rank_1.json"));
  EXPECT_EQ(mtime(kept), kept_time);
  EXPECT_EQ(read_file(kept), kept_text);

  // A half-written completions file (a run killed while writing) is not finished either.
  {
    const fs::path c = exp() / "pp-1_r0/completions.jsonl";
    std::string text = read_file(c);
    std::ofstream(c, std::ios::trunc) << text.substr(0, text.size() / 2);
  }
  const auto resumed2 = sweep();
  ASSERT_EQ(resumed2.exit_code, 0) << resumed2.output;
  EXPECT_NE(resumed2.output.find("[1/1] pp-1_r0: done"), std::string::npos) << resumed2.output;
  EXPECT_EQ(tokens_of(kept), kept_tokens) << "greedy: the redone point gives the same tokens";

  // The report: speedup from the raw files, exact tokens, PNG plots.
  const fs::path out = dir_ / "report";
  const auto rep = run_command(shell_quote(bin()) + " report " + shell_quote(exp().string()) + " --out " +
                               shell_quote(out.string()));
  ASSERT_EQ(rep.exit_code, 0) << rep.output;
  for (const char* f : {"report.md", "runs.csv", "scaling.csv", "correctness.csv"})
    EXPECT_TRUE(fs::exists(out / f)) << f << "\n" << rep.output;
  const auto scaling = read_csv_rows(out / "scaling.csv");
  ASSERT_EQ(scaling.size(), 2u);
  const double t1 = raw_tokens_per_s(exp() / "pp-1_r0", 1), t2 = raw_tokens_per_s(exp() / "pp-2_micro_batches-2_r0", 2);
  EXPECT_EQ(scaling[1].at("point"), "pp-2_micro_batches-2");
  EXPECT_EQ(scaling[1].at("baseline"), "pp-1");
  EXPECT_NEAR(std::stod(scaling[0].at("speedup")), 1.0, 1e-9);
  EXPECT_NEAR(std::stod(scaling[1].at("speedup")), t2 / t1, 1e-5 * t2 / t1);
  EXPECT_NEAR(std::stod(scaling[1].at("efficiency")), t2 / t1 / 2, 1e-5 * t2 / t1);
  EXPECT_NE(scaling[1].at("source").find("pp-2_micro_batches-2_r0/"), std::string::npos) << scaling[1].at("source");
  const auto correct = read_csv_rows(out / "correctness.csv");
  bool saw_pp2 = false;
  for (const auto& row : correct)
    if (row.at("run_id") == "pp-2_micro_batches-2_r0") {
      saw_pp2 = true;
      EXPECT_EQ(row.at("reference"), "pp-1_r0");
      EXPECT_EQ(row.at("compared"), "8");
      EXPECT_EQ(row.at("exact"), "8") << "pp=2 greedy tokens must equal world=1's";
    }
  EXPECT_TRUE(saw_pp2);
  const std::string md = read_file(out / "report.md");
  EXPECT_NE(md.find("| pp-2_micro_batches-2 |"), std::string::npos);

  if (run_command("python3 -c 'import matplotlib'").exit_code != 0)
    GTEST_SKIP() << "matplotlib is not importable by python3: PNG check skipped (bash scripts/setup_report.sh); "
                    "tables checked above";
  for (const char* png : {"plots/tiny_speedup.png", "plots/tiny_efficiency.png"}) {
    ASSERT_TRUE(fs::exists(out / png)) << png << "\n" << rep.output;
    const std::string bytes = read_file(out / png);
    ASSERT_GT(bytes.size(), 33u);
    EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8)) << png;
    EXPECT_EQ(bytes.substr(12, 4), "IHDR") << png;
    EXPECT_NE(md.find(std::string("(") + png + ")"), std::string::npos) << "report.md links " << png;
  }
}

TEST(SweepSpecErrors, BadSweepFilesExitTwoNamingTheKey) {
  ScratchDir dir;
  dir.write("base.yaml", "model: {path: /nonexistent/model.bin}\n");
  dir.write("zip.yaml", "base: " + (dir / "base.yaml").string() +
                            "\nzip:\n  world.pp: [1, 2]\n  batching.batch_size: [1, 2, 4]\n");
  auto r = run_command(shell_quote(bin()) + " sweep --dry-run " + shell_quote((dir / "zip.yaml").string()));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("zip.yaml:4: zip.batching.batch_size"), std::string::npos) << r.output;
  dir.write("key.yaml", "base: " + (dir / "base.yaml").string() + "\ngrid:\n  world.ppp: [1, 2]\n");
  r = run_command(shell_quote(bin()) + " sweep --dry-run " + shell_quote((dir / "key.yaml").string()));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("world.ppp"), std::string::npos) << r.output;
  dir.write("top.yaml", "base: x.yaml\ngrids: {}\n");
  r = run_command(shell_quote(bin()) + " sweep --dry-run " + shell_quote((dir / "top.yaml").string()));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("top.yaml:2: grids: unknown key"), std::string::npos) << r.output;
}

}  // namespace
