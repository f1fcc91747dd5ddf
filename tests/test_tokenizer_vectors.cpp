// Tokenizers against outside references: llama.cpp's test vectors (ggml-vocab-*.inp/.out), the SentencePiece
// library on the same vocabulary, and llama2.c's stories260K tokenizer. Reads ../shared/data; skips without it.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/tokenizer/chat_template.hpp"
#include "core/tokenizer/tokenizer.hpp"
#include "support/test_support.hpp"

namespace hpcinfer {
namespace {

using test::shared_data;

struct Case {
  std::string text;
  std::vector<int> ids;
};

// .inp: cases separated by "\n__ggml_vocab_test__\n" (one after the last); .out: one line of ids per case.
std::vector<Case> read_vectors(const std::string& stem) {
  const auto dir = shared_data() / "tokenizers/ggml-vocab";
  std::string inp = test::read_file(dir / (stem + ".inp"));
  std::string out = test::read_file(dir / (stem + ".out"));
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<Case> cases;
  for (size_t pos = 0, hit; (hit = inp.find(sep, pos)) != std::string::npos; pos = hit + sep.size())
    cases.push_back({inp.substr(pos, hit - pos), {}});
  std::istringstream lines(out);
  std::string line;
  for (auto& c : cases) {
    if (!std::getline(lines, line)) break;
    std::istringstream ids(line);
    for (int id; ids >> id;) c.ids.push_back(id);
  }
  return cases;
}

struct VectorSet {
  const char* name;
  const char* tokenizer;  // relative to shared data
  const char* vectors;    // stem of the .inp/.out files
};

class LlamaCppVectors : public ::testing::TestWithParam<VectorSet> {};

TEST_P(LlamaCppVectors, AllCasesMatchAndRoundTrip) {
  const VectorSet& p = GetParam();
  HPCINFER_REQUIRE_DATA(p.tokenizer);
  HPCINFER_REQUIRE_DATA(std::string("tokenizers/ggml-vocab/") + p.vectors + ".inp");
  auto tok = load_tokenizer((shared_data() / p.tokenizer).string());
  auto cases = read_vectors(p.vectors);
  ASSERT_EQ(cases.size(), 46u);
  int good = 0;
  for (const Case& c : cases) {
    std::vector<int> got = tok->encode(c.text, /*add_bos=*/false);
    EXPECT_EQ(got, c.ids) << p.name << ": text '" << c.text << "'";
    good += got == c.ids;
    EXPECT_EQ(tok->decode(got), c.text) << p.name << ": round trip of '" << c.text << "'";
  }
  EXPECT_EQ(good, 46) << p.name;
}

INSTANTIATE_TEST_SUITE_P(
    Vocabularies, LlamaCppVectors,
    ::testing::Values(
        VectorSet{"llama_spm", "tokenizers/ggml-vocab/ggml-vocab-llama-spm.gguf", "ggml-vocab-llama-spm.gguf"},
        VectorSet{"gpt2", "tokenizers/ggml-vocab/ggml-vocab-gpt-2.gguf", "ggml-vocab-gpt-2.gguf"},
        VectorSet{"deepseek_llm", "tokenizers/ggml-vocab/ggml-vocab-deepseek-llm.gguf", "ggml-vocab-deepseek-llm.gguf"},
        VectorSet{"llama3_encoder_json", "tokenizers/llama3-bpe", "ggml-vocab-llama-bpe.gguf"},
        // The same Llama-2 vocabulary in two more containers must give llama.cpp's ids too.
        VectorSet{"llama2c_bin", "tokenizers/llama2-sentencepiece/tokenizer.bin", "ggml-vocab-llama-spm.gguf"}),
    [](const auto& info) { return std::string(info.param.name); });

// The SentencePiece library and our SPM encoder agree on the Llama-2 vocabulary.
TEST(TokenizerReference, SentencePieceModelMatchesLlama2cBinAndGguf) {
  HPCINFER_REQUIRE_DATA("tokenizers/llama2-sentencepiece/tokenizer.model");
  HPCINFER_REQUIRE_DATA("tokenizers/ggml-vocab/ggml-vocab-llama-spm.gguf");
  const auto dir = shared_data() / "tokenizers";
  auto sp = load_tokenizer((dir / "llama2-sentencepiece/tokenizer.model").string());
  auto bin = load_tokenizer((dir / "llama2-sentencepiece/tokenizer.bin").string());
  auto gguf = load_tokenizer((dir / "ggml-vocab/ggml-vocab-llama-spm.gguf").string());
  EXPECT_EQ(sp->kind(), "sentencepiece");
  EXPECT_EQ(bin->kind(), "spm");
  EXPECT_EQ(sp->vocab_size(), 32000);
  EXPECT_EQ(bin->vocab_size(), 32000);
  EXPECT_EQ(sp->bos_id(), 1);
  EXPECT_EQ(sp->eos_id(), 2);
  EXPECT_EQ(sp->encode("Hello world!", true), (std::vector<int>{1, 15043, 3186, 29991}));
  for (const char* text : {"Hello world!", "The quick brown fox jumps over the lazy dog.", "  two  spaces\nand a newline",
                           "ünïcødé 🚀 日本語 3.14159", "Once upon a time, there was a little girl named Lily."}) {
    auto ref = sp->encode(text, true);
    EXPECT_EQ(bin->encode(text, true), ref) << text;
    EXPECT_EQ(gguf->encode(text, true), ref) << text;
    EXPECT_EQ(sp->decode(ref), text);
  }
}

// A longer real text (64 KiB of WikiText-2, CRLF line ends): SPM = libsentencepiece, and every vocabulary
// decodes its own ids back to the text.
TEST(TokenizerReference, WikitextAgreesAndRoundTrips) {
  HPCINFER_REQUIRE_DATA("eval/wikitext-2-raw/wiki.test.raw");
  HPCINFER_REQUIRE_DATA("tokenizers/llama2-sentencepiece/tokenizer.model");
  const std::string text = test::read_file(shared_data() / "eval/wikitext-2-raw/wiki.test.raw").substr(0, 65536);
  const auto dir = shared_data() / "tokenizers";
  auto sp = load_tokenizer((dir / "llama2-sentencepiece/tokenizer.model").string());
  auto ref = sp->encode(text, false);
  EXPECT_GT(ref.size(), 10000u);
  for (const char* rel : {"ggml-vocab/ggml-vocab-llama-spm.gguf", "llama2-sentencepiece/tokenizer.bin"})
    EXPECT_EQ(load_tokenizer((dir / rel).string())->encode(text, false), ref) << rel;
  for (const char* rel : {"ggml-vocab/ggml-vocab-llama-spm.gguf", "ggml-vocab/ggml-vocab-gpt-2.gguf", "llama3-bpe",
                          "ggml-vocab/ggml-vocab-deepseek-llm.gguf"}) {
    auto tok = load_tokenizer((dir / rel).string());
    EXPECT_EQ(tok->decode(tok->encode(text, true)), text) << rel;
  }
}

TEST(TokenizerReference, Stories260KTokenizerLoadsAndRoundTrips) {
  HPCINFER_REQUIRE_DATA("models/stories260K/tok512.bin");
  HPCINFER_REQUIRE_DATA("reference/stories260K_greedy_from_BOS_n200.txt");
  auto tok = load_tokenizer((shared_data() / "models/stories260K/tok512.bin").string());
  EXPECT_EQ(tok->vocab_size(), 512);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_TRUE(tok->add_bos());
  EXPECT_THROW(load_llama2c_tokenizer((shared_data() / "models/stories260K/tok512.bin").string(), 32000),
               std::runtime_error);  // a model that expects 32000 tokens does not fit this file
  std::string ref = test::read_file(shared_data() / "reference/stories260K_greedy_from_BOS_n200.txt");
  while (!ref.empty() && ref.back() == '\n') ref.pop_back();
  auto ids = tok->encode(ref, true);
  ASSERT_GT(ids.size(), 50u);
  EXPECT_EQ(ids[0], 1);
  // llama2.c's decode: the first piece after BOS loses its leading space.
  EXPECT_EQ(tok->decode_token(1, ids[1])[0], ref[0]);
  EXPECT_EQ(tok->decode(ids), ref);
  // The GGUF conversion of the same model embeds the same vocabulary.
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.gguf");
  auto g = load_tokenizer((shared_data() / "models/stories260K/stories260K.gguf").string());
  EXPECT_EQ(g->vocab_size(), 512);
  EXPECT_EQ(g->encode(ref, true), ids);
}

TEST(TokenizerReference, Llama3DirectoryHasSpecialsAndChatTokens) {
  HPCINFER_REQUIRE_DATA("tokenizers/llama3-bpe/encoder.json");
  auto t0 = std::chrono::steady_clock::now();
  auto tok = load_tokenizer((shared_data() / "tokenizers/llama3-bpe").string());
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("llama3-bpe (128256 tokens, 280147 merges) loaded in %.3f s\n", secs);  // informative, not asserted
  EXPECT_EQ(tok->vocab_size(), 128256);
  EXPECT_EQ(tok->bos_id(), 128000);
  EXPECT_EQ(tok->eot_id(), 128009);
  EXPECT_EQ(tok->encode("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", true),
            (std::vector<int>{128000, 128006, 882, 128007, 271, 13347, 128009}));
  // Without parse_special the same text is plain text.
  auto plain = tok->encode("<|eot_id|>", false, /*parse_special=*/false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(tok->decode(plain), "<|eot_id|>");
}

// The Llama-3 files rewritten as an HF tokenizer.json (Split regex + ByteLevel, ignore_merges, added tokens,
// TemplateProcessing BOS) must tokenize exactly as the encoder.json directory does.
TEST(TokenizerReference, Llama3AsTokenizerJsonMatchesVectors) {
  HPCINFER_REQUIRE_DATA("tokenizers/llama3-bpe/vocab.bpe");
  HPCINFER_REQUIRE_DATA("tokenizers/ggml-vocab/ggml-vocab-llama-bpe.gguf.inp");
  using nlohmann::json;
  const auto dir = shared_data() / "tokenizers/llama3-bpe";
  json vocab = json::parse(test::read_file(dir / "encoder.json"));
  json merges = json::array();
  std::istringstream lines(test::read_file(dir / "vocab.bpe"));
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) merges.push_back(line);
  json added = json::array();
  added.push_back({{"id", 128000}, {"content", "<|begin_of_text|>"}, {"special", true}});
  added.push_back({{"id", 128009}, {"content", "<|eot_id|>"}, {"special", true}});
  json tj = {
      {"added_tokens", added},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"}, {"pattern", {{"Regex", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
                                                     "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
                                                     "\\s+(?!\\S)|\\s+"}}},
           {"behavior", "Isolated"}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}}},
      {"post_processor",
       {{"type", "TemplateProcessing"}, {"single", {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}}}}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"ignore_merges", true}, {"vocab", vocab}, {"merges", merges}}}};
  test::ScratchDir scratch;
  scratch.write("tokenizer.json", tj.dump());
  auto tok = load_tokenizer(scratch.path().string());
  EXPECT_EQ(tok->kind(), "bpe");
  EXPECT_EQ(tok->vocab_size(), 128010);
  EXPECT_EQ(tok->bos_id(), 128000);
  EXPECT_TRUE(tok->add_bos());
  EXPECT_EQ(tok->eot_id(), 128009);
  int good = 0;
  for (const Case& c : read_vectors("ggml-vocab-llama-bpe.gguf")) {
    auto got = tok->encode(c.text, false);
    EXPECT_EQ(got, c.ids) << "text '" << c.text << "'";
    good += got == c.ids;
  }
  EXPECT_EQ(good, 46);
}

TEST(TokenizerReference, ChatFamilyFromVocabulary) {
  HPCINFER_REQUIRE_DATA("tokenizers/llama3-bpe/encoder.json");
  auto tok = load_tokenizer((shared_data() / "tokenizers/llama3-bpe").string());
  ASSERT_EQ(detect_chat_family(*tok), ChatFamily::llama3);
  auto ids = tok->encode(apply_chat_template({{"user", "Hi"}}, ChatFamily::llama3), true);
  EXPECT_EQ(ids, (std::vector<int>{128000, 128006, 882, 128007, 271, 13347, 128009, 128006, 78191, 128007, 271}));
}

}  // namespace
}  // namespace hpcinfer
