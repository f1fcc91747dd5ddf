// Whole-model checks against outside references (../shared/data), through the command line users call.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "support/test_support.hpp"

using namespace hpcinfer::test;

namespace {
const std::string kStories = "models/stories260K/";
std::string reference_text() { return read_file(shared_data() / "reference/stories260K_greedy_from_BOS_n200.txt"); }
std::string generate(const std::string& model_args) {
  // llama2.c's `-n 200` samples and prints 200 tokens after BOS; -n here counts generated tokens.
  // The text on stdout only (stderr may carry notes, e.g. stories260K.gguf states a context of 128).
  auto r = run_command("{ " + bin() + " generate " + model_args + " --prompt '' -n 200 --temperature 0 2>/dev/null; }");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  if (!r.output.empty() && r.output.back() == '\n') r.output.pop_back();
  return r.output;
}
}  // namespace

TEST(Golden, Stories260KGreedyFromBinMatchesUpstreamText) {
  HPCINFER_REQUIRE_DATA(kStories + "stories260K.bin");
  const auto d = shared_data() / kStories;
  EXPECT_EQ(generate("--model " + (d / "stories260K.bin").string() + " --tokenizer " + (d / "tok512.bin").string()),
            reference_text());
}

TEST(Golden, Stories260KGreedyFromGgufMatchesUpstreamText) {
  HPCINFER_REQUIRE_DATA(kStories + "stories260K.gguf");
  EXPECT_EQ(generate("--model " + (shared_data() / kStories / "stories260K.gguf").string()), reference_text());
}

TEST(Golden, Stories260KGreedyFromConvertedHfDirectoryMatchesUpstreamText) {
  HPCINFER_REQUIRE_DATA(kStories + "stories260K.bin");
  ScratchDir dir;
  auto r = run_command(bin() + " make-model --from " + shell_quote((shared_data() / kStories / "stories260K.bin").string()) +
                       " --out " + shell_quote((dir / "hf").string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(generate("--model " + (dir / "hf").string()), reference_text());
}

TEST(Golden, Stories260KBf16WeightsStayCloseToReference) {
  HPCINFER_REQUIRE_DATA(kStories + "stories260K.bin");
  const auto d = shared_data() / kStories;
  std::string got = generate("--model " + (d / "stories260K.bin").string() + " --tokenizer " +
                             (d / "tok512.bin").string() + " --weights bf16");
  // bf16 rounding may change a late near-tie; the opening must be the reference's.
  EXPECT_EQ(got.substr(0, 60), reference_text().substr(0, 60));
}

TEST(Golden, TinyRandomGgufLogitsWithin2e4OfLlamaCpp) {
  HPCINFER_REQUIRE_DATA("models/llama-2-tiny-random-gguf/llama-2-tiny-random.gguf");
  ScratchDir dir;
  auto r = run_command(bin() + " logits --model " +
                       shell_quote((shared_data() / "models/llama-2-tiny-random-gguf/llama-2-tiny-random.gguf").string()) +
                       " --tokens 1,15043,3186,29991 --out " + shell_quote((dir / "l.f32").string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string got = read_file(dir / "l.f32"), ref = read_file(shared_data() / "reference/llama-2-tiny-random_logits_llamacpp.f32");
  ASSERT_EQ(got.size(), ref.size());
  ASSERT_EQ(ref.size(), size_t(4) * 32000 * 4);
  const float* a = reinterpret_cast<const float*>(got.data());
  const float* b = reinterpret_cast<const float*>(ref.data());
  double worst = 0;
  for (size_t i = 0; i < ref.size() / 4; ++i) worst = std::max(worst, std::fabs(double(a[i]) - b[i]));
  EXPECT_LE(worst, 2e-4);
}

TEST(Golden, PrefillInOnePassEqualsTheGreedyPath) {
  // The logits command prefills every position in one batched pass; its argmax chain must be the greedy path
  // generate produced token by token (batched prefill and decode compute the same function).
  HPCINFER_REQUIRE_DATA(kStories + "stories260K.bin");
  const auto d = shared_data() / kStories;
  ScratchDir dir;
  std::ofstream(dir / "p.jsonl") << "{\"id\":\"a\",\"prompt\":\"\"}\n";
  dir.write("c.yaml", "model:\n  path: " + (d / "stories260K.bin").string() + "\n  tokenizer: " +
                          (d / "tok512.bin").string() + "\ninputs:\n  prompts: " + (dir / "p.jsonl").string() +
                          "\ngeneration:\n  max_new_tokens: 40\noutputs:\n  dir: " + (dir / "out").string() + "\n");
  auto r = run_command(bin() + " run " + shell_quote((dir / "c.yaml").string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string line = read_file(dir / "out/completions.jsonl");
  auto at = line.find("\"token_ids\":[");
  ASSERT_NE(at, std::string::npos) << line;
  std::vector<int> ids{1};
  for (size_t p = at + 13; line[p] != ']';) {
    ids.push_back(std::stoi(line.substr(p)));
    p = line.find_first_of(",]", p);
    if (line[p] == ',') ++p;
  }
  ASSERT_EQ(ids.size(), 41u);
  std::string tokens;
  for (size_t i = 0; i < ids.size(); ++i) tokens += (i ? "," : "") + std::to_string(ids[i]);
  r = run_command(bin() + " logits --model " + (d / "stories260K.bin").string() + " --tokens " + tokens + " --out " +
                  (dir / "l.f32").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string raw = read_file(dir / "l.f32");
  const float* l = reinterpret_cast<const float*>(raw.data());
  for (size_t i = 0; i + 1 < ids.size(); ++i) {
    const float* row = l + i * 512;
    EXPECT_EQ(std::max_element(row, row + 512) - row, ids[i + 1]) << "position " << i;
  }
}
