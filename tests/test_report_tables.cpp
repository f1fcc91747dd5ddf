// hpcinfer report on hand-made run directories with chosen raw numbers (no engine): the speedup, efficiency, A/B
// delta and its standard error, sensitivity percentages and the correctness table are checked against the same
// formulas applied here to the raw inputs; summary.json wins over the per-rank metrics when present. Also the sweep
// file expansion (points x zip x grid x vary, duplicates, labels, order) and the finished-point check of resume.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/studies/sweep_index.hpp"
#include "core/studies/sweep_spec.hpp"
#include "support/csv_rows.hpp"
#include "support/test_support.hpp"

using namespace hpcinfer::test;
namespace fs = std::filesystem;
namespace st = hpcinfer::studies;

namespace {

struct FakeRun {
  std::string label;
  int repeat = 0;
  std::map<std::string, std::map<std::string, std::string>> config;  // section -> key -> value
  std::vector<double> rank_walls;                                     // engine_wall_s per rank (world = size)
  std::map<std::string, std::vector<int>> tokens;                     // request id -> token ids
  double summary_wall = -1;                                           // >= 0: also write summary.json
  std::string run_id() const { return label + "_r" + std::to_string(repeat); }
};

const std::map<std::string, std::vector<int>> kTokens{{"a", std::vector<int>(32, 7)}, {"b", std::vector<int>(32, 9)}};

double tokens_in(const FakeRun& r) {
  double n = 0;
  for (const auto& [id, t] : r.tokens) n += double(t.size());
  return n;
}
double max_wall(const FakeRun& r) { return *std::max_element(r.rank_walls.begin(), r.rank_walls.end()); }

void write_run(const fs::path& exp, const FakeRun& r) {
  const fs::path dir = exp / r.run_id();
  fs::create_directories(dir / "metrics");
  std::ofstream cfg(dir / "config.yaml");
  for (const auto& [section, keys] : r.config) {
    cfg << section << ":\n";
    for (const auto& [k, v] : keys) cfg << "  " << k << ": " << v << "\n";
  }
  std::ofstream comp(dir / "completions.jsonl");
  for (const auto& [id, t] : r.tokens)
    comp << nlohmann::json{{"id", id}, {"prompt", "prompt " + id}, {"token_ids", t}}.dump() << "\n";
  for (size_t k = 0; k < r.rank_walls.size(); ++k)
    std::ofstream(dir / "metrics" / ("rank_" + std::to_string(k) + ".json"))
        << nlohmann::json{{"engine_wall_s", r.rank_walls[k]}, {"idle_recv_wait_s", 0.0}, {"requests", r.tokens.size()}};
  if (r.summary_wall >= 0)
    std::ofstream(dir / "summary.json") << nlohmann::json{{"generated_tokens", tokens_in(r)}, {"wall_s", r.summary_wall}};
}

void write_sweep(const fs::path& exp, const std::string& kind, const std::string& baseline,
                 const std::vector<std::string>& swept, const std::vector<FakeRun>& runs) {
  nlohmann::json idx{{"experiment", exp.filename().string()}, {"kind", kind}, {"baseline", baseline},
                     {"swept_keys", swept}, {"points", nlohmann::json::array()}};
  for (const auto& r : runs) {
    write_run(exp, r);
    idx["points"].push_back({{"run_id", r.run_id()}, {"label", r.label}, {"repeat", r.repeat},
                             {"world", r.rank_walls.size()}});
  }
  std::ofstream(exp / "sweep.json") << idx.dump(2);
}

FakeRun run(const std::string& label, int repeat, int pp, std::vector<double> walls,
            std::map<std::string, std::string> plugins = {{"weights", "f32"}}, int micro_batches = 1) {
  FakeRun r;
  r.label = label;
  r.repeat = repeat;
  r.config["world"] = {{"tp", "1"}, {"pp", std::to_string(pp)}};
  r.config["plugins"] = plugins;
  r.config["batching"] = {{"micro_batches", std::to_string(micro_batches)}};
  r.rank_walls = std::move(walls);
  r.tokens = kTokens;
  return r;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}
double sample_std(const std::vector<double>& v) {
  const double m = mean(v);
  double ss = 0;
  for (double x : v) ss += (x - m) * (x - m);
  return std::sqrt(ss / double(v.size() - 1));
}
double tps(const FakeRun& r) { return tokens_in(r) / (r.summary_wall >= 0 ? r.summary_wall : max_wall(r)); }
double num(const std::map<std::string, std::string>& row, const std::string& col) { return std::stod(row.at(col)); }
void expect_close(double got, double want) { EXPECT_NEAR(got, want, 1e-5 * std::abs(want) + 1e-9); }

class ReportTables : public ::testing::Test {
 protected:
  void SetUp() override {
    // strong scaling: world 1 (2 repeats) and pp=2 (2 repeats, the second with a diverging token)
    strong_ = {run("pp-1", 0, 1, {2.0}), run("pp-2", 0, 2, {1.0, 0.9}), run("pp-1", 1, 1, {2.0}),
               run("pp-2", 1, 2, {1.2, 1.5})};
    strong_[3].tokens["b"][2] = 1;
    write_sweep(dir_ / "strong", "strong_scaling", "pp-1", {"world.pp"}, strong_);
    // A/B: baseline mb-1 (its first run has a summary.json that disagrees with its metrics: summary.json wins)
    ab_ = {run("mb-1", 0, 2, {5.0, 5.0}), run("mb-2", 0, 2, {0.8, 0.7}), run("mb-1", 1, 2, {1.0, 0.9}),
           run("mb-2", 1, 2, {0.64, 0.6}), run("mb-1", 2, 2, {1.1, 1.0}), run("mb-2", 2, 2, {0.5, 0.4})};
    ab_[0].summary_wall = 1.05;
    write_sweep(dir_ / "ab", "ab", "mb-1", {"batching.micro_batches"}, ab_);
    // sensitivity around a pp=2 f32 base: weights bf16 (other tokens), micro-batches 1, and pp=1
    sens_ = {run("base", 0, 2, {1.0, 1.0}, {{"weights", "f32"}}, 2),
             run("weights-bf16", 0, 2, {0.8, 0.8}, {{"weights", "bf16"}}, 2),
             run("micro_batches-1", 0, 2, {2.0, 2.0}, {{"weights", "f32"}}, 1),
             run("pp-1", 0, 1, {1.6}, {{"weights", "f32"}}, 2)};
    sens_[1].tokens["b"][0] = 3;
    write_sweep(dir_ / "sens", "sensitivity", "base", {"plugins.weights", "batching.micro_batches", "world.pp"}, sens_);
    const auto r = run_command(shell_quote(bin()) + " report --no-plots --out " + shell_quote((dir_ / "out").string()) +
                               " " + shell_quote((dir_ / "strong").string()) + " " + shell_quote((dir_ / "ab").string()) +
                               " " + shell_quote((dir_ / "sens").string()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  std::vector<std::map<std::string, std::string>> rows(const std::string& table, const std::string& study) {
    std::vector<std::map<std::string, std::string>> out;
    for (auto& row : read_csv_rows(dir_ / "out" / (table + ".csv")))
      if (row.at("study") == study) out.push_back(row);
    return out;
  }

  ScratchDir dir_;
  std::vector<FakeRun> strong_, ab_, sens_;
};

TEST_F(ReportTables, SpeedupAndEfficiencyFollowFromTheRawNumbers) {
  const auto s = rows("scaling", "strong");
  ASSERT_EQ(s.size(), 2u);
  const double t1 = mean({tps(strong_[0]), tps(strong_[2])});
  const std::vector<double> t2{tps(strong_[1]), tps(strong_[3])};
  EXPECT_EQ(s[1].at("point"), "pp-2");
  EXPECT_EQ(s[1].at("series"), "pp");
  EXPECT_EQ(s[1].at("runs"), "2");
  expect_close(num(s[1], "tokens_per_s"), mean(t2));
  expect_close(num(s[1], "tokens_per_s_std"), sample_std(t2));
  expect_close(num(s[1], "speedup"), mean(t2) / t1);
  expect_close(num(s[1], "efficiency"), mean(t2) / t1 / 2);
  expect_close(num(s[0], "speedup"), 1.0);
  // 64 tokens: 1.0 s (max of 1.0, 0.9) and 1.5 s -> 64 and 42.67 tok/s; world 1: 2.0 s -> 32 tok/s
  expect_close(num(s[1], "speedup"), (64.0 + 64.0 / 1.5) / 2 / 32.0);
  EXPECT_NE(s[1].at("source").find("strong/pp-2_r{0,1}/metrics/rank_{0..1}.json"), std::string::npos) << s[1].at("source");
}

TEST_F(ReportTables, SummaryJsonIsPreferredAndNamedAsTheSource) {
  for (const auto& row : rows("runs", "ab"))
    if (row.at("run_id") == "mb-1_r0") {
      expect_close(num(row, "wall_s"), 1.05);
      EXPECT_NE(row.at("source").find("mb-1_r0/summary.json"), std::string::npos) << row.at("source");
      return;
    }
  FAIL() << "no runs row for mb-1_r0";
}

TEST_F(ReportTables, AbDeltaWithWelchStandardError) {
  const auto a = rows("ab", "ab");
  ASSERT_EQ(a.size(), 1u);
  const std::vector<double> va{tps(ab_[0]), tps(ab_[2]), tps(ab_[4])}, vb{tps(ab_[1]), tps(ab_[3]), tps(ab_[5])};
  EXPECT_EQ(a[0].at("baseline"), "mb-1");
  EXPECT_EQ(a[0].at("change"), "mb-2");
  const double delta = 100 * (mean(vb) / mean(va) - 1);
  const double se = 100 * std::sqrt(sample_std(va) * sample_std(va) / 3 + sample_std(vb) * sample_std(vb) / 3) / mean(va);
  expect_close(num(a[0], "delta_pct"), delta);
  expect_close(num(a[0], "delta_se_pct"), se);
  expect_close(num(a[0], "min_b"), 64 / 0.8);
  expect_close(num(a[0], "max_b"), 64 / 0.5);
  EXPECT_EQ(a[0].at("verdict"), std::abs(delta) > 2 * se ? "faster" : "within noise (|delta| <= 2 SE)");
}

TEST_F(ReportTables, SensitivityCurvesAgainstTheBasePoint) {
  std::map<std::string, std::map<std::string, std::string>> by;  // "key=value" -> row
  for (const auto& row : rows("sensitivity", "sens")) by[row.at("key") + "=" + row.at("value")] = row;
  ASSERT_TRUE(by.count("plugins.weights=bf16") && by.count("plugins.weights=f32")) << "rows: " << by.size();
  expect_close(num(by["plugins.weights=bf16"], "vs_base_pct"), 100 * (tps(sens_[1]) / tps(sens_[0]) - 1));
  expect_close(num(by["plugins.weights=f32"], "vs_base_pct"), 0);
  EXPECT_EQ(by["plugins.weights=bf16"].at("base_point"), "base");
  ASSERT_TRUE(by.count("batching.micro_batches=1"));
  expect_close(num(by["batching.micro_batches=1"], "vs_base_pct"), 100 * (tps(sens_[2]) / tps(sens_[0]) - 1));
  ASSERT_TRUE(by.count("world.pp=1"));
  expect_close(num(by["world.pp=1"], "tokens_per_s"), tps(sens_[3]));
  // numeric values in increasing order
  const auto all = rows("sensitivity", "sens");
  std::vector<std::string> mb;
  for (const auto& row : all)
    if (row.at("key") == "batching.micro_batches") mb.push_back(row.at("value"));
  EXPECT_EQ(mb, (std::vector<std::string>{"1", "2"}));
}

TEST_F(ReportTables, CorrectnessFindsTheDivergenceAndNamesWhatDiffers) {
  std::map<std::string, std::map<std::string, std::string>> by;
  for (const auto& row : read_csv_rows(dir_ / "out/correctness.csv")) by[row.at("study") + "/" + row.at("run_id")] = row;
  const auto& bad = by.at("strong/pp-2_r1");
  EXPECT_EQ(bad.at("reference"), "pp-1_r0");
  EXPECT_EQ(bad.at("compared"), "2");
  EXPECT_EQ(bad.at("exact"), "1");
  EXPECT_EQ(bad.at("first_divergence"), "2");
  const auto& good = by.at("strong/pp-2_r0");
  EXPECT_EQ(good.at("exact"), "2");
  EXPECT_EQ(good.at("first_divergence"), "");
  const auto& bf16 = by.at("sens/weights-bf16_r0");
  EXPECT_EQ(bf16.at("reference"), "pp-1_r0");
  EXPECT_EQ(bf16.at("first_divergence"), "0");
  EXPECT_NE(bf16.at("reference_differs_in").find("plugins.weights=bf16 (ref f32)"), std::string::npos)
      << bf16.at("reference_differs_in");
  EXPECT_EQ(by.at("sens/base_r0").at("reference_differs_in"), "");
  EXPECT_EQ(by.count("ab/mb-1_r0"), 0u) << "no world=1 run in the A/B study: no correctness row";
  // every table row names raw files
  for (const char* t : {"runs", "scaling", "sensitivity", "ab", "correctness"})
    for (const auto& row : read_csv_rows(dir_ / "out" / (std::string(t) + ".csv")))
      EXPECT_NE(row.at("source").find(".json"), std::string::npos) << t << ": " << row.at("source");
}

TEST(SweepSpec, ExpandsPointsZipGridVaryWithoutDuplicates) {
  ScratchDir dir;
  dir.write("base.yaml", "model: {path: /m.bin}\nworld: {pp: 2}\nbatching: {batch_size: 8, micro_batches: 2}\n");
  // an invalid point (micro_batches > batch_size) is refused before anything runs, naming the point
  dir.write("bad.yaml", "base: " + (dir / "base.yaml").string() + "\ngrid:\n  batching.micro_batches: [2, 16]\n");
  try {
    st::load_sweep((dir / "bad.yaml").string());
    ADD_FAILURE() << "no error for micro_batches=16 > batch_size=8";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("point {batching.micro_batches=16}"), std::string::npos) << e.what();
  }
  dir.write("s.yaml", "experiment: e\nbase: " + (dir / "base.yaml").string() +
                          "\nrepeats: 2\nzip:\n  world.pp: [1, 2]\n  batching.batch_size: [4, 8]\n"
                          "vary:\n  batching.micro_batches: [1, 2]\n");
  const auto s = st::load_sweep((dir / "s.yaml").string());
  // zip rows (pp=1 bs=4, pp=2 bs=8) x (the row itself, mb=1, mb=2); mb=2 is the base's value: a duplicate
  ASSERT_EQ(s.points.size(), 8u);
  EXPECT_EQ(s.points[0].run_id, "pp-1_batch_size-4_r0");
  EXPECT_EQ(s.points[1].run_id, "pp-1_batch_size-4_micro_batches-1_r0");
  EXPECT_EQ(s.points[2].run_id, "pp-2_batch_size-8_r0");
  EXPECT_EQ(s.points[3].run_id, "pp-2_batch_size-8_micro_batches-1_r0");
  EXPECT_EQ(s.points[4].run_id, "pp-1_batch_size-4_r1") << "repeat-major order";
  EXPECT_EQ(s.points[2].world(), 2);
  EXPECT_EQ(s.points[0].world(), 1);
  EXPECT_EQ(s.baseline_label, "pp-1_batch_size-4");
  EXPECT_EQ(s.swept_keys, (std::vector<std::string>{"world.pp", "batching.batch_size", "batching.micro_batches"}));
  EXPECT_EQ(s.run_dir(s.points[0]), "results/e/pp-1_batch_size-4_r0");
  EXPECT_EQ(st::id_piece("inputs.prompts", "configs/prompts/tales16.jsonl"), "prompts-tales16");
  EXPECT_EQ(st::id_piece("world.layer_split", "[2,3]"), "layer_split-2-3");
}

TEST(SweepIndex, FinishedMeansEveryRanksMetricsAndAllCompletions) {
  ScratchDir dir;
  const FakeRun r = run("x", 0, 2, {1.0, 1.0});
  const std::string d = (dir / r.run_id()).string();
  EXPECT_EQ(st::point_finished(d, 2).why, "no results directory");
  write_run(dir.path(), r);
  EXPECT_TRUE(st::point_finished(d, 2).finished) << st::point_finished(d, 2).why;
  EXPECT_FALSE(st::point_finished(d, 3).finished) << "rank 2's metrics are missing";
  const std::string text = read_file(d + "/completions.jsonl");
  std::ofstream(d + "/completions.jsonl", std::ios::trunc) << text.substr(0, text.size() - 5);
  auto f = st::point_finished(d, 2);
  EXPECT_FALSE(f.finished);
  EXPECT_NE(f.why.find("not complete JSON"), std::string::npos) << f.why;
  std::ofstream(d + "/completions.jsonl", std::ios::trunc) << text.substr(0, text.find('\n') + 1);
  f = st::point_finished(d, 2);
  EXPECT_FALSE(f.finished);
  EXPECT_NE(f.why.find("1 completions, the metrics say 2 requests"), std::string::npos) << f.why;
  std::ofstream(d + "/completions.jsonl", std::ios::trunc) << text;
  std::ofstream(d + "/metrics/rank_1.json", std::ios::trunc) << "{\"engine_wall";
  f = st::point_finished(d, 2);
  EXPECT_FALSE(f.finished);
  EXPECT_NE(f.why.find("does not parse"), std::string::npos) << f.why;
}

}  // namespace
