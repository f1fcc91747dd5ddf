// hpcinfer eval: the strided-window plan, perplexity on stories260K (a real signal, and equal to a direct
// computation from `hpcinfer logits`), multiple choice (PIQA, HellaSwag and a synthetic task the model must get
// right), the data readers, and bad inputs.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <tuple>

#include "core/eval/fallback_corpus.hpp"
#include "core/eval/mc_tasks.hpp"
#include "core/eval/multiple_choice.hpp"
#include "core/eval/perplexity.hpp"
#include "core/eval/text_file.hpp"
#include "support/test_support.hpp"

namespace hpcinfer {
namespace {

namespace fs = std::filesystem;
using eval::plan_windows;

const char* kModel = "models/stories260K/stories260K.bin";
const char* kTokenizer = "models/stories260K/tok512.bin";
const char* kWikitext = "eval/wikitext-2-raw/wiki.test.raw";
const char* kPiqa = "eval/piqa/valid.jsonl";
const char* kHellaswag = "eval/hellaswag/hellaswag_val_full.txt.bz2";

std::string data(const std::string& rel) { return (test::shared_data() / rel).string(); }

std::string model_args() {
  // One thread: the tests share 2 cores with other work, where the thread pool's hand-offs cost far more than
  // this tiny model's compute.
  return " --model " + test::shell_quote(data(kModel)) + " --tokenizer " + test::shell_quote(data(kTokenizer)) +
         " --threads 1";
}

// stdout of an hpcinfer command line, stderr dropped (progress lines go there).
test::CommandResult run_stdout(const std::string& args) {
  return test::run_command("(" + test::bin() + " " + args + " 2>/dev/null)");
}

nlohmann::json run_json(const std::string& args) {
  const test::CommandResult r = run_stdout(args + " --json");
  EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.output;
  try {
    return nlohmann::json::parse(r.output);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not JSON: " << e.what() << "\n" << r.output;
    return nlohmann::json::object();
  }
}

// ---- window plan (no data needed) ----

TEST(EvalWindows, EveryTokenButTheFirstScoredOnceWithinTheContext) {
  const std::vector<std::tuple<long long, int, int>> cases = {
      {1000, 64, 16}, {1000, 64, 63}, {65, 64, 32}, {64, 64, 32}, {7, 64, 32}, {2, 2, 1}, {513, 512, 256}};
  for (auto [n, ctx, stride] : cases) {
    SCOPED_TRACE("n " + std::to_string(n) + " ctx " + std::to_string(ctx) + " stride " + std::to_string(stride));
    const std::vector<eval::Window> w = plan_windows(n, ctx, stride);
    ASSERT_FALSE(w.empty());
    std::vector<int> times(static_cast<size_t>(n), 0);
    for (size_t k = 0; k < w.size(); ++k) {
      EXPECT_EQ(w[k].begin, static_cast<long long>(k) * stride);  // starts stride apart
      EXPECT_LE(w[k].end - w[k].begin, ctx);
      EXPECT_LT(w[k].begin, w[k].score_from);  // a scored token always has some context
      EXPECT_LE(w[k].score_from, w[k].end);
      for (long long t = w[k].score_from; t < w[k].end; ++t) ++times[size_t(t)];
      // At least ctx - stride tokens of context for every token scored after the first window.
      if (k > 0) EXPECT_GE(w[k].score_from - w[k].begin, ctx - stride);
    }
    EXPECT_EQ(times[0], 0);
    for (long long t = 1; t < n; ++t) EXPECT_EQ(times[size_t(t)], 1) << "token " << t;
    EXPECT_EQ(w.back().end, n);
  }
}

TEST(EvalWindows, DisjointWindowsSkipTheFirstTokenOfEach) {
  const std::vector<eval::Window> w = plan_windows(100, 10, 10);
  ASSERT_EQ(w.size(), 10u);
  long long scored = 0;
  for (const eval::Window& x : w) {
    EXPECT_EQ(x.score_from, x.begin + 1);
    scored += x.end - x.score_from;
  }
  EXPECT_EQ(scored, 90);
}

TEST(EvalWindows, RejectsBadSizes) {
  EXPECT_THROW(plan_windows(100, 1, 1), std::invalid_argument);
  EXPECT_THROW(plan_windows(100, 16, 0), std::invalid_argument);
  EXPECT_THROW(plan_windows(100, 16, 17), std::invalid_argument);
  EXPECT_TRUE(plan_windows(1, 16, 8).empty());  // nothing to score
}

TEST(EvalMc, StandardErrorIsBinomial) {
  EXPECT_DOUBLE_EQ(eval::accuracy_stderr(0.25, 4), std::sqrt(0.25 * 0.75 / 4));
  EXPECT_DOUBLE_EQ(eval::accuracy_stderr(1.0, 10), 0.0);
  EXPECT_DOUBLE_EQ(eval::accuracy_stderr(0.5, 0), 0.0);
}

// ---- perplexity on stories260K, in process ----

class EvalStories : public ::testing::Test {
 protected:
  void SetUp() override {
    HPCINFER_REQUIRE_DATA(kModel);
    HPCINFER_REQUIRE_DATA(kTokenizer);
    ExperimentConfig cfg;
    cfg.model.path = data(kModel);
    cfg.model.tokenizer = data(kTokenizer);
    cfg.plugin_path = {test::plugin_dir()};
    cfg.threads = 1;
    s_ = describe_rank(cfg, LaunchEnv{});
    s_->tokenizer = open_tokenizer(cfg.model.tokenizer, *s_->model);
    open_rank(*s_, 4, 256);
  }
  std::unique_ptr<RankSession> s_;
};

TEST_F(EvalStories, PerplexityIsLowOnStoriesAndHigherOnTheSameTokensShuffled) {
  const Tokenizer& tok = *s_->tokenizer;
  const std::vector<int> story = tok.encode(eval::fallback_corpus(), true, false);
  ASSERT_GT(story.size(), 500u);
  std::vector<int> shuffled = story;
  std::mt19937 rng(7);
  std::shuffle(shuffled.begin() + 1, shuffled.end(), rng);  // BOS stays first

  eval::SequenceScorer scorer(*s_, 1);
  const eval::PerplexityResult a = eval::perplexity(scorer, story, 256, 128);
  const eval::PerplexityResult b = eval::perplexity(scorer, shuffled, 256, 128);
  const double vocab = double(s_->model->desc().vocab);
  EXPECT_EQ(a.tokens_scored, static_cast<long long>(story.size()) - 1);
  EXPECT_EQ(b.tokens_scored, a.tokens_scored);
  EXPECT_TRUE(std::isfinite(a.perplexity()));
  EXPECT_GT(a.perplexity(), 1.0);
  EXPECT_LT(a.perplexity(), vocab / 10) << "a TinyStories model on a simple story";
  // Same unigram counts, no order: the model's context must be worth a lot.
  EXPECT_GT(b.perplexity(), 2.0 * a.perplexity()) << "story " << a.perplexity() << ", shuffled " << b.perplexity();
  EXPECT_TRUE(std::isfinite(b.perplexity()));  // may exceed the vocabulary size: the model is confidently wrong
}

TEST_F(EvalStories, ScorerGivesTheSameLogprobsAloneAndBatchedWithOtherSequences) {
  const Tokenizer& tok = *s_->tokenizer;
  eval::ScoredSequence x{tok.encode("Lily saw a big dog in the park.", true, false), 3};
  eval::ScoredSequence y{tok.encode("Tom liked to eat red apples.", true, false), 1};
  eval::SequenceScorer scorer(*s_, 4);
  const std::vector<double> alone = scorer.score({x})[0];
  const std::vector<std::vector<double>> both = scorer.score({y, x});
  ASSERT_EQ(alone.size(), x.ids.size() - 3);
  ASSERT_EQ(both[1].size(), alone.size());
  EXPECT_EQ(both[0].size(), y.ids.size() - 1);
  for (size_t i = 0; i < alone.size(); ++i) {
    EXPECT_NEAR(both[1][i], alone[i], 1e-9);
    EXPECT_LT(alone[i], 0.0);
  }
  EXPECT_THROW(scorer.score({x, x, x, x, x}), std::invalid_argument);  // 5 sequences, 4 slots
}

// ---- the CLI: strided windows equal a direct computation with `hpcinfer logits` ----

std::vector<int> tokenize_cli(const fs::path& text_file) {
  const test::CommandResult r = run_stdout("tokenize --tokenizer " + test::shell_quote(data(kTokenizer)) +
                                           " --text-file " + test::shell_quote(text_file.string()) + " --bos");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::vector<int> ids;
  std::istringstream in(r.output);
  for (int id; in >> id;) ids.push_back(id);
  return ids;
}

// -log P(ids[t] | ids[from..t)) for t in [from + 1, to), from one `hpcinfer logits` call on ids[from..to).
double direct_nll(const std::vector<int>& ids, size_t from, size_t to, size_t first_scored,
                  const test::ScratchDir& dir) {
  std::string list;
  for (size_t i = from; i < to; ++i) list += (i > from ? "," : "") + std::to_string(ids[i]);
  const fs::path out = dir / "logits.f32";
  fs::remove(out);
  const test::CommandResult r = run_stdout("logits" + model_args() + " --tokens " + list + " --out " +
                                           test::shell_quote(out.string()));
  const std::string bytes = test::read_file(out);
  const size_t n = to - from, V = bytes.size() / sizeof(float) / n;
  if (r.exit_code != 0 || V == 0 || bytes.size() != n * V * sizeof(float)) {
    ADD_FAILURE() << "hpcinfer logits: exit " << r.exit_code << ", " << bytes.size() << " bytes for " << n
                  << " positions\n" << r.output;
    return NAN;
  }
  std::vector<float> logits(n * V);
  std::memcpy(logits.data(), bytes.data(), bytes.size());
  double nll = 0;
  for (size_t t = first_scored; t < to; ++t) {
    const float* row = logits.data() + (t - 1 - from) * V;  // the row of position t-1 predicts token t
    double m = row[0], z = 0;
    for (size_t v = 1; v < V; ++v) m = std::max(m, double(row[v]));
    for (size_t v = 0; v < V; ++v) z += std::exp(double(row[v]) - m);
    nll -= double(row[ids[t]]) - m - std::log(z);
  }
  return nll;
}

TEST(EvalPplCli, StridedWindowEqualsDirectComputationFromLogits) {
  HPCINFER_REQUIRE_DATA(kModel);
  test::ScratchDir dir;
  dir.write("tiny.txt", "The little bird sang a song. The cat looked up and smiled at the bird in the tree.");
  const std::vector<int> ids = tokenize_cli(dir / "tiny.txt");
  ASSERT_GT(ids.size(), 30u);
  const int ctx = 16, stride = 6;
  const nlohmann::json j = run_json("eval ppl" + model_args() + " --data " + test::shell_quote((dir / "tiny.txt").string()) +
                                    " --ctx " + std::to_string(ctx) + " --stride " + std::to_string(stride));
  ASSERT_EQ(j.value("tokens_used", 0u), ids.size());
  EXPECT_EQ(j.value("corpus", ""), "file");

  // Direct: token t (t >= 1) is predicted from the tokens since the start of the first window that reaches it:
  // window 0 for t < ctx, else window k = (t - ctx) / stride + 1, which starts at k * stride.
  std::map<size_t, size_t> first_of_window;  // window start -> first token it scores
  for (size_t t = 1; t < ids.size(); ++t) {
    const size_t start = t < size_t(ctx) ? 0 : ((t - size_t(ctx)) / stride + 1) * size_t(stride);
    first_of_window.emplace(start, t);
  }
  double nll = 0;
  long long scored = 0;
  for (auto it = first_of_window.begin(); it != first_of_window.end(); ++it) {
    const auto next = std::next(it);
    const size_t end = next == first_of_window.end() ? ids.size() : next->second;
    ASSERT_LE(end - it->first, size_t(ctx));
    nll += direct_nll(ids, it->first, end, it->second, dir);
    scored += static_cast<long long>(end - it->second);
  }
  EXPECT_EQ(j.value("windows", 0), int(first_of_window.size()));
  EXPECT_EQ(j.value("tokens_scored", 0LL), scored);
  EXPECT_EQ(scored, static_cast<long long>(ids.size()) - 1);
  EXPECT_NEAR(j.value("nll_sum", 0.0), nll, 1e-6 * nll);
  EXPECT_NEAR(j.value("perplexity", 0.0), std::exp(nll / double(scored)), 1e-6 * j.value("perplexity", 0.0));

  // One window holding everything: the NLL of a single pass.
  const nlohmann::json one = run_json("eval ppl" + model_args() + " --data " +
                                      test::shell_quote((dir / "tiny.txt").string()) + " --ctx 64 --stride 32");
  EXPECT_EQ(one.value("windows", 0), 1);
  EXPECT_NEAR(one.value("nll_sum", 0.0), direct_nll(ids, 0, ids.size(), 1, dir), 1e-6 * nll);
}

TEST(EvalPplCli, WikitextPrefixAndTheFallbackCorpus) {
  HPCINFER_REQUIRE_DATA(kModel);
  HPCINFER_REQUIRE_DATA(kWikitext);
  const nlohmann::json w = run_json("eval ppl" + model_args() + " --data " + test::shell_quote(data(kWikitext)) +
                                    " --limit-tokens 3000");
  EXPECT_EQ(w.value("corpus", ""), "wikitext-2-test");
  EXPECT_EQ(w.value("tokens_used", 0), 3000);
  EXPECT_GT(w.value("tokens_in_text", 0), 3000);
  EXPECT_EQ(w.value("tokens_scored", 0), 2999);
  EXPECT_TRUE(std::isfinite(w.value("perplexity", NAN)));
  EXPECT_GT(w.value("tokens_per_s", 0.0), 0.0);

  const nlohmann::json f = run_json("eval ppl" + model_args() + " --fallback --ctx 256 --stride 128");
  EXPECT_EQ(f.value("corpus", ""), "fallback");
  // Wikipedia is far from TinyStories; the built-in stories are close to it.
  EXPECT_LT(f.value("perplexity", 1e9), w.value("perplexity", 0.0));

  // No --data and no WikiText-2 where the default path points (../shared/data from the working directory):
  // the fallback, said on stderr and in the output.
  test::ScratchDir cwd;
  fs::create_directories(cwd / "sub");
  const test::CommandResult r = test::run_command("cd " + test::shell_quote((cwd / "sub").string()) + " && " +
                                                  test::bin() + " eval ppl" + model_args() + " --ctx 128 --stride 64");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("not found; measuring the built-in fallback corpus"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("corpus: fallback"), std::string::npos) << r.output;
}

// ---- multiple choice ----

TEST(EvalMcCli, PiqaLimit20IsAStableAccuracyWithBinomialStandardErrors) {
  HPCINFER_REQUIRE_DATA(kModel);
  HPCINFER_REQUIRE_DATA(kPiqa);
  const std::string args = "eval mc --task piqa --limit 20 --data " + test::shell_quote(data(kPiqa)) + model_args();
  const nlohmann::json a = run_json(args), b = run_json(args);
  const int n = a.value("items", 0);
  ASSERT_EQ(n, 20);
  for (const char* k : {"acc", "acc_norm"}) {
    const double p = a.value(k, -1.0);
    EXPECT_GE(p, 0.0);
    EXPECT_LE(p, 1.0);
    EXPECT_NEAR(a.value(std::string(k) + "_stderr", -1.0), std::sqrt(p * (1 - p) / n), 1e-12) << k;
  }
  EXPECT_NEAR(a.value("acc", 0.0) * n, a.value("correct", -1), 1e-9);
  EXPECT_EQ(a["predictions"].size(), 20u);
  // Two runs: the same choices and the same log-likelihoods to the last bit.
  EXPECT_EQ(a["predictions"], b["predictions"]);
  EXPECT_EQ(a["predictions_norm"], b["predictions_norm"]);
  EXPECT_EQ(a.value("gold_logprob_mean", 0.0), b.value("gold_logprob_mean", 1.0));
  EXPECT_LT(a.value("gold_logprob_mean", 0.0), 0.0);
}

TEST(EvalMcCli, HellaswagFromBz2) {
  HPCINFER_REQUIRE_DATA(kModel);
  HPCINFER_REQUIRE_DATA(kHellaswag);
  const nlohmann::json a = run_json("eval mc --task hellaswag --limit 12 --data " + test::shell_quote(data(kHellaswag)) +
                                    model_args());
  ASSERT_EQ(a.value("items", 0), 12);
  for (int p : a["predictions"]) EXPECT_TRUE(p >= 0 && p < 4);
  const double acc = a.value("acc_norm", -1.0);
  EXPECT_NEAR(a.value("acc_norm_stderr", -1.0), std::sqrt(acc * (1 - acc) / 12), 1e-12);
}

// A task the model must get right: the natural continuation of a TinyStories sentence against the same words
// scrambled. Checks that the higher log-likelihood wins (a sign error would score 0).
TEST(EvalMcCli, PrefersTheNaturalEnding) {
  HPCINFER_REQUIRE_DATA(kModel);
  test::ScratchDir dir;
  const std::vector<std::array<std::string, 3>> items = {
      {"Once upon a time, there was a little girl named Lily. She", "loved to play outside in the park.",
       "park the outside in play to loved."},
      {"Tom had a big red ball. He", "liked to play with it every day.", "day every it with play to liked."},
      {"The sun was hot, so the children", "went to the beach to swim.", "swim to beach the went to."},
      {"Mom said, \"Time for bed.\" The boy", "was very tired and went to sleep.", "sleep to went and tired very was."},
      {"The little dog was hungry. He", "wanted to eat his food.", "food his eat to wanted."},
      {"Sue found a pretty flower. She", "gave it to her mom.", "mom her to it gave."}};
  std::string jsonl, labels;
  for (size_t i = 0; i < items.size(); ++i) {
    const bool swap = i % 2 == 1;  // the right answer is sol1 or sol2 in turn
    nlohmann::json j = {{"goal", items[i][0]}, {"sol1", items[i][swap ? 2 : 1]}, {"sol2", items[i][swap ? 1 : 2]}};
    jsonl += j.dump() + "\n";
    labels += swap ? "1\n" : "0\n";
  }
  dir.write("mc.jsonl", jsonl);
  dir.write("labels.lst", labels);
  const nlohmann::json a = run_json("eval mc --task piqa --data " + test::shell_quote((dir / "mc.jsonl").string()) +
                                    " --labels " + test::shell_quote((dir / "labels.lst").string()) + model_args());
  EXPECT_EQ(a.value("items", 0), int(items.size()));
  EXPECT_GE(a.value("acc", 0.0), 5.0 / 6.0) << a.dump();
}

// ---- readers and bad inputs ----

TEST(EvalData, HellaswagBz2ParsesAndATruncatedCopyIsRefusedByName) {
  HPCINFER_REQUIRE_DATA(kHellaswag);
  const std::vector<eval::McItem> items = eval::load_hellaswag(data(kHellaswag), 0);
  ASSERT_GT(items.size(), 1000u);
  std::vector<int> per_label(4, 0);
  for (const eval::McItem& it : items) {
    ASSERT_EQ(it.endings.size(), 4u);
    ASSERT_TRUE(it.gold >= 0 && it.gold < 4);
    ++per_label[size_t(it.gold)];
    EXPECT_FALSE(it.context.empty());
  }
  for (int c : per_label) EXPECT_GT(c, int(items.size()) / 8);  // labels are spread, not all one value

  test::ScratchDir dir;
  const std::string packed = test::read_file(data(kHellaswag));
  dir.write("cut.txt.bz2", packed.substr(0, packed.size() / 2));
  try {
    eval::read_text_file((dir / "cut.txt.bz2").string());
    ADD_FAILURE() << "a truncated .bz2 was read";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cut.txt.bz2"), std::string::npos) << e.what();
  }
}

TEST(EvalData, CrlfIsReadAsLfAndPiqaLabelsAreChecked) {
  test::ScratchDir dir;
  dir.write("a.txt", "one\r\ntwo\r\n");
  EXPECT_EQ(eval::read_text_file((dir / "a.txt").string()), "one\ntwo\n");
  dir.write("p.jsonl", "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\"}\n");
  dir.write("l.lst", "2\n");
  try {
    eval::load_piqa((dir / "p.jsonl").string(), (dir / "l.lst").string(), 0);
    ADD_FAILURE() << "label 2 accepted for a 2-way task";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("l.lst:1"), std::string::npos) << e.what();
  }
  dir.write("l.lst", "1\n");
  const std::vector<eval::McItem> it = eval::load_piqa((dir / "p.jsonl").string(), (dir / "l.lst").string(), 0);
  ASSERT_EQ(it.size(), 1u);
  EXPECT_EQ(it[0].gold, 1);
  EXPECT_EQ(it[0].context, "Question: g\nAnswer:");
  EXPECT_EQ(it[0].endings[1], " b");
}

TEST(EvalCli, BadInputsExitTwoNamingWhatIsWrong) {
  HPCINFER_REQUIRE_DATA(kModel);
  const std::string missing = "/nonexistent/eval/wiki.test.raw";
  test::CommandResult r = test::run_command(test::bin() + " eval ppl" + model_args() + " --data " + missing);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(missing), std::string::npos) << r.output;

  r = test::run_command(test::bin() + " eval mc --task winogrande" + model_args());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("unknown task 'winogrande'"), std::string::npos) << r.output;

  const std::string missing_piqa = "/nonexistent/piqa/valid.jsonl";
  r = test::run_command(test::bin() + " eval mc --task piqa --data " + missing_piqa + model_args());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(missing_piqa), std::string::npos) << r.output;

  r = test::run_command(test::bin() + " eval ppl" + model_args() + " --ctx 16 --stride 32");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("stride"), std::string::npos) << r.output;

  r = test::run_command(test::bin() + " eval bleu");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("unknown suite 'bleu'"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace hpcinfer
