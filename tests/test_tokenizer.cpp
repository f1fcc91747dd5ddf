// Tokenizer units that need no outside data: byte maps, pre-tokenizer regexes, tiny SPM and BPE vocabularies,
// chat templates, and the errors bad files must give. Also the `hpcinfer tokenize` command line.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/tokenizer/bpe_tokenizer.hpp"
#include "core/tokenizer/chat_template.hpp"
#include "core/tokenizer/pretokenizer.hpp"
#include "core/tokenizer/spm_tokenizer.hpp"
#include "core/tokenizer/text_util.hpp"
#include "support/test_support.hpp"

namespace hpcinfer {
namespace {

using test::ScratchDir;

// Expects `fn` to throw std::exception whose message contains every one of `parts`.
template <class Fn>
void expect_error(Fn fn, std::initializer_list<std::string> parts) {
  try {
    fn();
    ADD_FAILURE() << "no exception";
  } catch (const std::exception& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << " lacks " << p;
  }
}

TEST(TokenizerText, ByteToUnicodeIsGpt2sMap) {
  EXPECT_EQ(tok::bytes_to_unicode(" "), "\xC4\xA0");  // Ġ
  EXPECT_EQ(tok::bytes_to_unicode("\n"), "\xC4\x8A");  // Ċ
  EXPECT_EQ(tok::bytes_to_unicode("a!"), "a!");
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  std::string back;
  ASSERT_TRUE(tok::unicode_to_bytes(tok::bytes_to_unicode(all), back));
  EXPECT_EQ(back, all);
  EXPECT_EQ(tok::parse_byte_piece("<0x0A>"), 10);
  EXPECT_EQ(tok::parse_byte_piece("<0xfF>"), 255);
  EXPECT_EQ(tok::parse_byte_piece("<0x0G>"), -1);
  EXPECT_EQ(tok::byte_piece(10), "<0x0A>");
}

std::vector<std::string> split(const PreTokenizer& p, std::string_view text) {
  std::vector<std::string> r;
  for (auto w : p.split(text)) r.emplace_back(w);
  return r;
}

TEST(TokenizerPre, Gpt2AndLlama3Regexes) {
  PreTokenizer gpt2(PreTokenizer::preset("gpt-2"));
  EXPECT_EQ(split(gpt2, "Hello world's  123!!"),
            (std::vector<std::string>{"Hello", " world", "'s", " ", " 123", "!!"}));
  PreTokenizer l3(PreTokenizer::preset("llama-bpe"));
  EXPECT_EQ(split(l3, "I'VE 12345 apples\n\n  ok"),
            (std::vector<std::string>{"I", "'VE", " ", "123", "45", " apples", "\n\n", " ", " ok"}));
  EXPECT_TRUE(split(l3, "").empty());
  // Invalid UTF-8 never matches but is kept (the words still cover the text).
  auto words = split(gpt2, std::string("ab\xFF\xFE cd"));
  std::string joined;
  for (auto& w : words) joined += w;
  EXPECT_EQ(joined, std::string("ab\xFF\xFE cd"));
  EXPECT_THROW(PreTokenizer({"(unclosed"}), std::invalid_argument);
  EXPECT_TRUE(PreTokenizer::preset("no-such-pre").empty());
}

// A toy SPM vocabulary: merges by score, byte fallback for what no piece covers.
std::unique_ptr<Tokenizer> toy_spm() {
  VocabData v;
  v.source = "toy-spm";
  v.pieces = {"<unk>", "<s>", "</s>", "▁", "h", "e", "l", "o", "▁h", "he", "ll", "llo", "▁hello", "▁he", "<0xC3>",
              "<0xA9>"};
  v.scores = {0, 0, 0, -1, -2, -2, -2, -2, -3, -1, -4, -5, -6, -7, 0, 0};
  v.types.assign(v.pieces.size(), TokenType::normal);
  v.types[0] = TokenType::unknown;
  v.types[1] = v.types[2] = TokenType::control;
  v.types[14] = v.types[15] = TokenType::byte;
  v.unk = 0, v.bos = 1, v.eos = 2;
  v.add_bos = v.add_space_prefix = true;
  return std::make_unique<SpmTokenizer>(std::move(v));
}

TEST(TokenizerSpm, MergesByScoreAndFallsBackToBytes) {
  auto t = toy_spm();
  // "▁hello": he(-1), ll(-4), llo(-5), then ▁he(-7) is the only pair left, then ▁he+llo = ▁hello(-6).
  EXPECT_EQ(t->encode("hello", true), (std::vector<int>{1, 12}));
  EXPECT_EQ(t->encode("é", false), (std::vector<int>{3, 14, 15}));  // ▁ then the two bytes of é
  EXPECT_EQ(t->decode(t->encode("é hello", true)), "é hello");
  EXPECT_EQ(t->encode("", true), (std::vector<int>{1}));
  EXPECT_TRUE(t->encode("", false).empty());
  // Special-token text becomes the token (and the space prefix is added again after it).
  EXPECT_EQ(t->encode("he</s>he", false), (std::vector<int>{13, 2, 13}));
  // Without parse_special it is text; "<", "/", "s", ">" have no piece and no byte piece here: <unk> each.
  EXPECT_EQ(t->encode("he</s>he", false, /*parse_special=*/false), (std::vector<int>{13, 0, 0, 0, 0, 9}));
  EXPECT_EQ(t->decode_token(1, 12), "hello");   // after BOS: leading space dropped
  EXPECT_EQ(t->decode_token(4, 12), " hello");
  EXPECT_EQ(t->decode_token(4, 14), "\xC3");
  EXPECT_EQ(t->decode_token(4, 2), "");         // control tokens decode to nothing
  EXPECT_THROW(t->decode_token(4, 99), std::out_of_range);
  EXPECT_EQ(t->stop_ids(), (std::vector<int>{2}));
}

// A toy byte-level BPE written as an HF tokenizer.json.
const char* kToyJson = R"({
  "added_tokens": [{"id": 9, "content": "<|end|>", "special": true}],
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
  "decoder": {"type": "ByteLevel"},
  "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "Ġ": 2, "ab": 3, "Ġab": 4, "c": 5, "abc": 6, "bc": 7},
            "merges": ["a b", "Ġ ab", ["b", "c"], "ab c"]}
})";

TEST(TokenizerBpe, HfJsonMergesByRank) {
  ScratchDir dir;
  dir.write("tokenizer.json", kToyJson);
  auto t = load_tokenizer(dir.path().string());
  EXPECT_EQ(t->kind(), "bpe");
  EXPECT_EQ(t->vocab_size(), 10);
  // "abc": a+b (rank 0) before b+c (rank 2), then ab+c (rank 3).
  EXPECT_EQ(t->encode("abc", false), (std::vector<int>{6}));
  EXPECT_EQ(t->encode("ab ab", false), (std::vector<int>{3, 4}));
  EXPECT_EQ(t->encode("ab<|end|>bc", false), (std::vector<int>{3, 9, 7}));
  EXPECT_EQ(t->decode({3, 4, 9, 7}), "ab abbc");  // the control token decodes to nothing
  EXPECT_EQ(t->token_text(9), "<|end|>");
  EXPECT_EQ(t->eos_id(), -1);
}

// SentencePiece converted to HF BPE (Llama-2's tokenizer.json): "▁" spaces, byte fallback, Prepend normalizer.
TEST(TokenizerBpe, SpmStyleTokenizerJson) {
  ScratchDir dir;
  dir.write("tokenizer.json", R"({
    "added_tokens": [{"id": 1, "content": "<s>", "special": true}, {"id": 2, "content": "</s>", "special": true}],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                   {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
    "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}]},
    "model": {"type": "BPE", "byte_fallback": true, "unk_token": "<unk>",
              "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x21>": 3, "▁": 4, "h": 5, "i": 6, "hi": 7, "▁hi": 8},
              "merges": ["h i", "▁ hi"]}
  })");
  dir.write("tokenizer_config.json", R"({"bos_token": "<s>", "eos_token": {"content": "</s>"}, "add_bos_token": true,
                                         "chat_template": "{{ '<|im_start|>' }}"})");
  auto t = load_tokenizer(dir.path().string());
  EXPECT_EQ(t->kind(), "spm");
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_id(), 2);
  EXPECT_TRUE(t->add_bos());
  EXPECT_EQ(t->encode("hi hi!", true), (std::vector<int>{1, 8, 8, 3}));
  EXPECT_EQ(t->decode(t->encode("hi hi!", true)), "hi hi!");
  EXPECT_EQ(detect_chat_family(*t), ChatFamily::chatml);
}

TEST(TokenizerBpe, IgnoreMergesTakesWholeWords) {
  VocabData v;
  v.source = "toy-bpe";
  v.style = PieceStyle::byte_level;
  v.pieces = {"a", "b", "c", "ab", "abc"};
  MergeList merges = {{"a", "b"}};  // no merge forms "abc"
  BpeTokenizer plain(v, merges, PreTokenizer::preset("gpt-2"), false);
  BpeTokenizer whole(v, merges, PreTokenizer::preset("gpt-2"), true);
  EXPECT_EQ(plain.encode("abc", false), (std::vector<int>{3, 2}));
  EXPECT_EQ(whole.encode("abc", false), (std::vector<int>{4}));
  EXPECT_EQ(plain.n_merges(), 1u);
}

TEST(TokenizerChat, Llama3AndChatml) {
  std::vector<ChatMessage> msgs = {{"system", "Be brief."}, {"user", " Hi \n"}};
  EXPECT_EQ(apply_chat_template(msgs, ChatFamily::llama3),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(apply_chat_template({{"user", "Hi"}}, ChatFamily::chatml, false), "<|im_start|>user\nHi<|im_end|>\n");
  EXPECT_EQ(apply_chat_template({{"user", "Hi"}}, ChatFamily::chatml),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(detect_chat_family("{% for m in messages %}<|start_header_id|>{{ m.role }}"), ChatFamily::llama3);
  EXPECT_EQ(detect_chat_family("{{'<|im_start|>' + message['role']}}"), ChatFamily::chatml);
  EXPECT_EQ(detect_chat_family("[INST]"), ChatFamily::none);
  EXPECT_THROW(apply_chat_template(msgs, ChatFamily::none), std::invalid_argument);
  EXPECT_EQ(detect_chat_family(*toy_spm()), ChatFamily::none);
}

// --- bad inputs: the error names the file and what is wrong ---

TEST(TokenizerErrors, TruncatedLlama2cBin) {
  ScratchDir dir;
  std::string data;
  auto put_i32 = [&](int32_t x) { data.append(reinterpret_cast<const char*>(&x), 4); };
  auto put_f32 = [&](float x) { data.append(reinterpret_cast<const char*>(&x), 4); };
  put_i32(8);
  for (const char* p : {"<unk>", "<s>", "</s>", "hello"}) {
    put_f32(0.f);
    put_i32(static_cast<int32_t>(std::strlen(p)));
    data += p;
  }
  const auto good = dir / "good.bin";
  std::ofstream(good, std::ios::binary) << data;
  EXPECT_EQ(load_tokenizer(good.string())->vocab_size(), 4);
  const auto bad = dir / "truncated.bin";
  std::ofstream(bad, std::ios::binary) << data.substr(0, data.size() - 3);
  expect_error([&] { load_tokenizer(bad.string()); }, {bad.string(), "truncated", "token 3"});
  const auto bad2 = dir / "cut_in_header.bin";
  std::ofstream(bad2, std::ios::binary) << data.substr(0, data.size() - 7);
  expect_error([&] { load_tokenizer(bad2.string()); }, {bad2.string(), "token 3"});
}

TEST(TokenizerErrors, TokenizerJsonMissingFields) {
  ScratchDir dir;
  dir.write("no_model.json", R"({"added_tokens": []})");
  dir.write("no_vocab.json", R"({"model": {"type": "BPE", "merges": []}})");
  dir.write("no_merges.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}}})");
  dir.write("unigram.json", R"({"model": {"type": "Unigram", "vocab": []}})");
  dir.write("broken.json", R"({"model": )");
  expect_error([&] { load_tokenizer((dir / "no_model.json").string()); }, {"no_model.json", "field model "});
  expect_error([&] { load_tokenizer((dir / "no_vocab.json").string()); }, {"no_vocab.json", "model.vocab"});
  expect_error([&] { load_tokenizer((dir / "no_merges.json").string()); }, {"no_merges.json", "model.merges"});
  expect_error([&] { load_tokenizer((dir / "unigram.json").string()); }, {"unigram.json", "Unigram"});
  expect_error([&] { load_tokenizer((dir / "broken.json").string()); }, {"broken.json", "JSON"});
  expect_error([&] { load_tokenizer((dir / "absent.json").string()); }, {"absent.json", "not found"});
}

// A GGUF v3 file with one string key and no tensors.
void write_gguf(const std::filesystem::path& p, const std::string& key, const std::string& value) {
  std::string d = "GGUF";
  auto put = [&](auto x) { d.append(reinterpret_cast<const char*>(&x), sizeof x); };
  auto put_str = [&](const std::string& s) { put(uint64_t(s.size())); d += s; };
  put(uint32_t(3));
  put(uint64_t(0));  // tensors
  put(uint64_t(1));  // key/values
  put_str(key);
  put(uint32_t(8));  // string
  put_str(value);
  std::ofstream(p, std::ios::binary) << d;
}

TEST(TokenizerErrors, GgufWithoutTokens) {
  ScratchDir dir;
  const auto p = dir / "novocab.gguf";
  write_gguf(p, "general.architecture", "llama");
  expect_error([&] { load_tokenizer(p.string()); }, {p.string(), "tokenizer.ggml.tokens"});
}

TEST(TokenizerErrors, NoTokenizerInDirectory) {
  ScratchDir dir;
  dir.write("readme.txt", "nothing here");
  expect_error([&] { load_tokenizer(dir.path().string()); }, {dir.path().string(), "no tokenizer"});
}

// --- the command line ---

TEST(TokenizeCli, PrintsIdsAndReportsErrors) {
  if (!std::filesystem::exists(test::bin())) GTEST_SKIP() << "hpcinfer not built at " << test::bin();
  ScratchDir dir;
  dir.write("tokenizer.json", kToyJson);
  dir.write("text.txt", "ab ab");
  const std::string tok = test::shell_quote(dir.path().string());
  auto r = test::run_command(test::bin() + " tokenize --tokenizer " + tok + " --text abc");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "6\n");
  r = test::run_command(test::bin() + " tokenize --tokenizer " + tok + " --text-file " +
                        test::shell_quote((dir / "text.txt").string()));
  EXPECT_EQ(r.output, "3 4\n");
  r = test::run_command(test::bin() + " tokenize --tokenizer " + tok + " --text ''");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, "\n");
  r = test::run_command(test::bin() + " tokenize --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("--tokenizer"), std::string::npos);
  r = test::run_command(test::bin() + " tokenize --text abc");  // no --tokenizer
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = test::run_command(test::bin() + " tokenize --tokenizer " + tok);  // no text
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = test::run_command(test::bin() + " tokenize --tokenizer " + tok + " --bogus");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  dir.write("bad.json", "{}");
  r = test::run_command(test::bin() + " tokenize --tokenizer " + test::shell_quote((dir / "bad.json").string()) +
                        " --text x");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("bad.json"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace hpcinfer
