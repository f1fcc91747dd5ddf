// outputs.dir as jobs and reruns meet it (issue 18): one job at a time (the lock names the holder), a rerun resumes
// (skips finished prompts, cuts a torn last line) unless --fresh, a rerun with another configuration is refused,
// result files are replaced whole, a prompt the context cannot hold fails alone; and the checks of inputs and flags
// that used to run nonsense with exit 0.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/results/output_dir.hpp"
#include "support/test_support.hpp"
#include "test_formats_helpers.hpp"

namespace hpcinfer {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;
using test::shared_data;

std::string read_all(const fs::path& p) { return test::read_file(p); }

TEST(OutputDir, SecondLockIsRefusedWithTheHoldersPid) {
  ScratchDir dir;
  OutputDirLock first(dir / "out");
  try {
    OutputDirLock second(dir / "out");
    FAIL() << "a second lock on the same outputs.dir was granted";
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("in use"), std::string::npos) << msg;
    EXPECT_NE(msg.find("pid " + std::to_string(getpid())), std::string::npos) << msg;
  }
}

TEST(OutputDir, LockIsReleasedWithItsHolder) {
  ScratchDir dir;
  { OutputDirLock first(dir / "out"); }
  EXPECT_NO_THROW(OutputDirLock again(dir / "out"));
}

TEST(OutputDir, TornLastLineIsCutAndFinishedIdsRead) {
  ScratchDir dir;
  const fs::path p = dir / "completions.jsonl";
  const std::string whole = "{\"id\":\"a\",\"completion\":\"x\"}\n{\"id\":\"b\",\"completion\":\"y\"}\n";
  dir.write("completions.jsonl", whole + "{\"id\":\"c\",\"compl");
  const FinishedCompletions f = finished_completions(p);
  EXPECT_EQ(f.ids, (std::set<std::string>{"a", "b"}));
  EXPECT_TRUE(f.dropped_torn_line);
  EXPECT_EQ(read_all(p), whole);  // the file now ends at its last whole line: appending continues cleanly
  EXPECT_FALSE(finished_completions(p).dropped_torn_line);
  EXPECT_TRUE(finished_completions(dir / "absent.jsonl").ids.empty());
}

TEST(OutputDir, DamageBeforeTheLastLineIsAnErrorNotARepair) {
  ScratchDir dir;
  dir.write("completions.jsonl", "{\"id\":\"a\"}\nnot json\n{\"id\":\"b\"}\n");
  try {
    finished_completions(dir / "completions.jsonl");
    FAIL() << "a damaged middle line was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("completions.jsonl:2"), std::string::npos) << e.what();
  }
}

TEST(OutputDir, AtomicWriteReplacesWholeAndLeavesNoTemporary) {
  ScratchDir dir;
  const fs::path p = dir / "summary.json";
  write_file_atomic(p, "old");
  write_file_atomic(p, "new text");
  EXPECT_EQ(read_all(p), "new text");
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST(OutputDir, ConfigDifferenceNamesTheKeyAndIgnoresWhatChangesNoResult) {
  const std::string a = "# comment\nmodel:\n  path: m.bin\ngeneration:\n  seed: 1\nthreads: 2\noutputs:\n  fresh: false\n";
  EXPECT_EQ(config_difference(a, a), "");
  std::string b = a;
  b.replace(b.find("threads: 2"), 10, "threads: 8");
  b.replace(b.find("fresh: false"), 12, "fresh: true");
  b.replace(b.find("# comment"), 9, "# other");
  EXPECT_EQ(config_difference(a, b), "");
  std::string c = a;
  c.replace(c.find("seed: 1"), 7, "seed: 2");
  EXPECT_NE(config_difference(a, c).find("generation.seed"), std::string::npos) << config_difference(a, c);
}

// ---- the CLI on stories260K ----

struct Stories {
  fs::path model = shared_data() / "models/stories260K/stories260K.bin";
  fs::path tok = shared_data() / "models/stories260K/tok512.bin";
};

std::string write_run_config(const ScratchDir& dir, const std::string& prompts, const std::string& out,
                             int new_tokens = 6, const std::string& extra = "") {
  const Stories s;
  std::ostringstream y;
  y << "model:\n  path: " << s.model.string() << "\n  tokenizer: " << s.tok.string() << "\n"
    << "plugins:\n  weights: f32\n"
    << "inputs:\n  prompts: " << prompts << "\n"
    << "generation:\n  max_new_tokens: " << new_tokens << "\n  temperature: 0.8\n  seed: 5\n"
    << "batching:\n  batch_size: 4\n"
    << "outputs:\n  dir: " << out << "\n"
    << extra;
  dir.write("exp.yaml", y.str());
  return (dir / "exp.yaml").string();
}

std::string prompts_file(const ScratchDir& dir, int n) {
  std::string text;
  for (int i = 0; i < n; ++i)
    text += nlohmann::json{{"id", "q" + std::to_string(i)}, {"prompt", "Once upon a time " + std::to_string(i)}}.dump() +
            "\n";
  dir.write("prompts.jsonl", text);
  return (dir / "prompts.jsonl").string();
}

// completions.jsonl by id, without the timings (which differ between runs).
std::map<std::string, nlohmann::json> completions_by_id(const fs::path& p) {
  std::map<std::string, nlohmann::json> out;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j = nlohmann::json::parse(line);
    j.erase("timings");
    out[j["id"].get<std::string>()] = j;
  }
  return out;
}

test::CommandResult run(const std::string& cfg, const std::string& more = "") {
  return test::run_command(test::shell_quote(test::bin()) + " run " + test::shell_quote(cfg) + " " + more + " 2>&1");
}

TEST(RunOutputs, RerunResumesAfterATornLineAndMatchesAWholeRun) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  ScratchDir dir;
  const std::string prompts = prompts_file(dir, 7);
  const fs::path whole = dir / "whole", part = dir / "part";
  auto r = run(write_run_config(dir, prompts, whole.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto expected = completions_by_id(whole / "completions.jsonl");
  ASSERT_EQ(expected.size(), 7u);

  // A job killed after 3 completions and half of a fourth line.
  r = run(write_run_config(dir, prompts, part.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(part / "completions.jsonl");
  std::string kept, line;
  for (int i = 0; i < 3 && std::getline(in, line); ++i) kept += line + "\n";
  std::getline(in, line);
  in.close();
  std::ofstream(part / "completions.jsonl", std::ios::trunc) << kept << line.substr(0, line.size() / 2);

  r = run(write_run_config(dir, prompts, part.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("resume: 3 of 7 requests"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("torn last line"), std::string::npos) << r.output;
  EXPECT_EQ(completions_by_id(part / "completions.jsonl"), expected);  // same seeds per request: the same texts
  int lines = 0;
  std::ifstream again(part / "completions.jsonl");
  for (std::string l; std::getline(again, l);) ++lines;
  EXPECT_EQ(lines, 7);

  r = run(write_run_config(dir, prompts, part.string()), "--fresh");  // starts over: 7 lines again, not 14
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("resume:"), std::string::npos) << r.output;
  EXPECT_EQ(completions_by_id(part / "completions.jsonl"), expected);
}

TEST(RunOutputs, RerunWithAnotherConfigurationIsRefused) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  ScratchDir dir;
  const std::string prompts = prompts_file(dir, 2), out = (dir / "out").string();
  ASSERT_EQ(run(write_run_config(dir, prompts, out)).exit_code, 0);
  const std::string before = read_all(fs::path(out) / "completions.jsonl");
  auto r = run(write_run_config(dir, prompts, out, 9));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("generation.max_new_tokens"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--fresh"), std::string::npos) << r.output;
  EXPECT_EQ(read_all(fs::path(out) / "completions.jsonl"), before);  // nothing lost
}

TEST(RunOutputs, SecondJobOnADirectoryInUseIsRefused) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  ScratchDir dir;
  const std::string prompts = prompts_file(dir, 2), out = (dir / "out").string();
  OutputDirLock held(out);  // another job holds it
  auto r = run(write_run_config(dir, prompts, out));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("in use"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("pid " + std::to_string(getpid())), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(fs::path(out) / "completions.jsonl"));
}

TEST(RunOutputs, PromptTooLongForTheContextFailsAlone) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  ScratchDir dir;
  std::string long_prompt;
  for (int i = 0; i < 3000; ++i) long_prompt += "word ";
  dir.write("p.jsonl", nlohmann::json{{"id", "a"}, {"prompt", "Once upon a time"}}.dump() + "\n" +
                           nlohmann::json{{"id", "long"}, {"prompt", long_prompt}}.dump() + "\n" +
                           nlohmann::json{{"id", "b"}, {"prompt", "The cat"}}.dump() + "\n");
  const fs::path out = dir / "out";
  auto r = run(write_run_config(dir, (dir / "p.jsonl").string(), out.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto c = completions_by_id(out / "completions.jsonl");
  ASSERT_EQ(c.size(), 3u) << r.output;
  EXPECT_EQ(c.at("long")["finish_reason"], "error");
  EXPECT_NE(c.at("long")["error"].get<std::string>().find("context of 512"), std::string::npos) << c.at("long");
  EXPECT_EQ(c.at("a")["completion_tokens"], 6);
  EXPECT_EQ(c.at("b")["completion_tokens"], 6);
  // The KV cache was sized by the prompts that run, not by the 9000-token one.
  const auto m = nlohmann::json::parse(read_all(out / "metrics" / "rank_0.json"));
  EXPECT_EQ(m["requests_failed"], 1);
  EXPECT_LT(m["kv_cache_bytes"].get<double>(), 1e6) << m["kv_cache_bytes"];
}

TEST(RunOutputs, GenerationLongerThanTheContextStopsAtItsEnd) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  ScratchDir dir;
  const std::string prompts = prompts_file(dir, 1);
  const fs::path out = dir / "out";
  auto r = run(write_run_config(dir, prompts, out.string(), 2147483647));  // 2^31 - 1: the sum overflowed an int
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto c = completions_by_id(out / "completions.jsonl");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_LE(c.at("q0")["prompt_tokens"].get<int>() + c.at("q0")["completion_tokens"].get<int>(), 512);
}

TEST(RunOutputs, BadPromptFilesAreNamed) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  ScratchDir dir;
  fs::create_directories(dir / "adir");
  auto r = run(write_run_config(dir, (dir / "adir").string(), (dir / "o1").string()));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("is a directory"), std::string::npos) << r.output;
  dir.write("empty.jsonl", "\n");
  r = run(write_run_config(dir, (dir / "empty.jsonl").string(), (dir / "o2").string()));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("holds no prompts"), std::string::npos) << r.output;
  dir.write("dup.jsonl", "{\"id\":\"x\",\"prompt\":\"a\"}\n{\"id\":\"y\",\"prompt\":\"b\"}\n{\"id\":\"x\",\"prompt\":\"c\"}\n");
  r = run(write_run_config(dir, (dir / "dup.jsonl").string(), (dir / "o3").string()));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("dup.jsonl:3: id x repeats line 1"), std::string::npos) << r.output;
  dir.write("big.jsonl", "{\"prompt\": \"" + std::string(1 << 20, 'a') + "\n");  // 1 MB broken line
  r = run(write_run_config(dir, (dir / "big.jsonl").string(), (dir / "o4").string()));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("big.jsonl:1"), std::string::npos) << r.output.substr(0, 400);
  EXPECT_LT(r.output.size(), 4000u) << "the broken line was echoed";
}

TEST(RunOutputs, MoreSlotsThanMemoryIsRefusedBeforeLoading) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  ScratchDir dir;
  const std::string prompts = prompts_file(dir, 1);
  auto r = run(write_run_config(dir, prompts, (dir / "o").string()),
               "--set batching.batch_size=100000000 --set generation.max_new_tokens=400");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("the plan needs"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("batching.batch_size"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("bad_alloc"), std::string::npos) << r.output;
}

// Ranks on one host share its memory: two pp=2 ranks whose plans each fit under the cap but not together are
// refused before loading, naming the ranks on the host (HPCINFER_HOST_MEMORY_BYTES makes the small host).
TEST(RunOutputs, RanksOnOneHostAreCheckedTogether) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  ScratchDir dir;
  const std::string cfg = write_run_config(dir, prompts_file(dir, 1), (dir / "o").string());
  auto launch = [&](double cap) {
    return test::run_command("HPCINFER_HOST_MEMORY_BYTES=" + std::to_string(int64_t(cap)) + " " +
                             test::shell_quote(test::bin()) + " launch -n 2 " + test::shell_quote(cfg) +
                             " --fresh --set world.pp=2 --set world.timeout_s=5 --set batching.batch_size=2000"
                             " --set generation.max_new_tokens=400 2>&1; rc=$?; cat " +
                             test::shell_quote((dir / "o/ranks/rank_0.log").string()) + "; exit $rc");
  };
  auto r = launch(1000);
  EXPECT_NE(r.exit_code, 0);
  const size_t at = r.output.find("of the 2 ranks on this host");
  ASSERT_NE(at, std::string::npos) << r.output;
  const size_t share_at = r.output.find("this rank's plan needs ", at);
  ASSERT_NE(share_at, std::string::npos) << r.output;
  const double share = std::stod(r.output.substr(share_at + 23)) * 1e9;  // "0.65 GB"
  ASSERT_GT(share, 1e8) << r.output;
  // One rank's plan fits in 1.5x its share; the two together do not.
  r = launch(1.5 * share);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("of the 2 ranks on this host"), std::string::npos) << r.output;
}

TEST(DirectCommands, GenerateFlagsObeyTheSchemaRanges) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  const Stories s;
  const std::string base = test::shell_quote(test::bin()) + " generate --model " + test::shell_quote(s.model.string()) +
                           " --tokenizer " + test::shell_quote(s.tok.string()) + " --prompt Once -n 4 ";
  for (const auto& [flag, key] : std::vector<std::pair<std::string, std::string>>{
           {"--top-p 2", "--top-p"}, {"--top-k -5", "--top-k"}, {"--threads -3", "--threads"}, {"--min-p 1.5", "--min-p"}}) {
    const auto r = test::run_command(base + flag + " 2>&1");
    EXPECT_EQ(r.exit_code, 2) << flag << ": " << r.output;
    EXPECT_NE(r.output.find(key), std::string::npos) << r.output;
  }
  EXPECT_EQ(test::run_command(base + "--top-p 0.9 --top-k 5 2>&1").exit_code, 0);
}

// generate and logits run past a file's stated context as llama.cpp does (some files state less than the model
// takes: stories260K.gguf says 128), but say so; `run` holds it as a limit (RunOutputs above).
TEST(DirectCommands, LogitsWarnsPastTheStatedContext) {
  ScratchDir dir;
  auto g = test::TinyGguf::llama(32, 32, 2, 1, 4);
  g.kv_u32("llama.context_length", 1);
  const std::string m = (dir / "ctx1.gguf").string();
  g.write(m);
  const auto r = test::run_command(test::shell_quote(test::bin()) + " logits --model " + test::shell_quote(m) +
                                   " --tokens 1,2,3 --out " + test::shell_quote((dir / "l.f32").string()) + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("past the model's max_seq_len 1"), std::string::npos) << r.output;
}

TEST(DirectCommands, GenerateOfAbsurdLengthIsRefusedByMemoryNotACrash) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  const Stories s;
  const auto r = test::run_command(test::shell_quote(test::bin()) + " generate --model " +
                                   test::shell_quote(s.model.string()) + " --tokenizer " + test::shell_quote(s.tok.string()) +
                                   " --prompt Once -n 2147483647 2>&1");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("the plan needs"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("_M_default_append"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace hpcinfer
