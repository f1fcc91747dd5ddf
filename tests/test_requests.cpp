// Prompts JSONL in, completions JSONL out: broken lines are reported as FILE:LINE (stop or skip, as configured).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/runtime/requests.hpp"
#include "support/test_support.hpp"

using namespace hpcinfer;
using hpcinfer::test::ScratchDir;

TEST(Prompts, ReadsPromptsAndIds) {
  ScratchDir d;
  d.write("p.jsonl", "{\"id\": \"a\", \"prompt\": \"x\"}\n\n{\"prompt\": \"y\", \"id\": 7}\n{\"prompt\": \"z\"}\n");
  auto r = read_prompts_jsonl((d / "p.jsonl").string(), "stop", nullptr);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].id, "a");
  EXPECT_EQ(r[1].id, "7");
  EXPECT_EQ(r[2].id, "4");  // line number when no id
  EXPECT_EQ(r[2].prompt, "z");
  EXPECT_EQ(r[2].index, 2);
}

TEST(Prompts, BrokenLineStopsWithFileAndLine) {
  ScratchDir d;
  d.write("p.jsonl", "{\"prompt\": \"ok\"}\n{\"prompt\": \"unterminated\n{\"id\": 3}\n");
  const std::string path = (d / "p.jsonl").string();
  try {
    read_prompts_jsonl(path, "stop", nullptr);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":2: not valid JSON"), std::string::npos) << e.what();
  }
}

TEST(Prompts, BrokenLinesSkippedWithWarningsWhenConfigured) {
  ScratchDir d;
  d.write("p.jsonl", "{\"prompt\": \"ok\"}\nnot json\n{\"id\": 3}\n{\"prompt\": \"also ok\"}\n");
  std::vector<std::string> warnings;
  auto r = read_prompts_jsonl((d / "p.jsonl").string(), "skip", &warnings);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1].prompt, "also ok");
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[0].find(":2:"), std::string::npos);
  EXPECT_NE(warnings[1].find(":3: missing string field \"prompt\""), std::string::npos) << warnings[1];
}

TEST(Prompts, MissingFileIsNamed) {
  EXPECT_THROW(
      {
        try {
          read_prompts_jsonl("/nonexistent/prompts.jsonl", "stop", nullptr);
        } catch (const std::runtime_error& e) {
          EXPECT_NE(std::string(e.what()).find("/nonexistent/prompts.jsonl"), std::string::npos);
          throw;
        }
      },
      std::runtime_error);
}

TEST(Completions, EachLineIsFlushedAsWritten) {
  ScratchDir d;
  const std::string path = (d / "c.jsonl").string();
  CompletionWriter w(path);
  Completion c;
  c.id = "a";
  c.text = "bad utf8 \xff ok";
  c.token_ids = {5, 6};
  c.finish_reason = "length";
  w.write(c);
  // Readable before the writer closes: a crash after this line loses nothing.
  auto j = nlohmann::json::parse(hpcinfer::test::read_file(path));
  EXPECT_EQ(j["id"], "a");
  EXPECT_EQ(j["token_ids"], (std::vector<int>{5, 6}));
  EXPECT_EQ(j["finish_reason"], "length");
}
