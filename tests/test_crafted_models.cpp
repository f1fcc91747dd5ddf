// Crafted model files and descriptions (issue 18: a hostile or careless user's files): sizes that would wrap around,
// paths outside the model directory, FIFOs, descriptions that would silently compute nonsense. Each must get an error
// naming the file and the key, tensor or field; none may crash, hang or allocate what the header claims.
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>

#include "core/formats/safetensors.hpp"
#include "core/model/model_source.hpp"
#include "core/tokenizer/tokenizer.hpp"
#include "support/test_support.hpp"
#include "test_formats_helpers.hpp"

namespace hpcinfer {
namespace {

using test::expect_error;

std::string pod_bytes(const void* p, size_t n) { return std::string(static_cast<const char*>(p), n); }

// A GGUF whose attention.key_length (head_dim) is 2^61: heads x head_dim wrapped to a small value before, and the
// q/k permutation wrote far past its buffer.
TEST(CraftedModels, GgufHugeHeadDimIsRefusedBeforeAnyProduct) {
  test::ScratchDir dir;
  const auto p = (dir / "m.gguf").string();
  auto g = test::TinyGguf::llama(32, 32, 2, 1, 4);
  g.kv_u64("llama.attention.key_length", uint64_t(1) << 61);
  g.write(p);
  expect_error([&] { open_model(p); }, {p, "head_dim", "out of range"});
}

TEST(CraftedModels, GgufCountsThatDoNotFitAnIntAreNotTruncated) {
  test::ScratchDir dir;
  const auto p = (dir / "m.gguf").string();
  auto g = test::TinyGguf::llama(32, 32, 2, 1, 4);
  g.kv_u64("llama.block_count", (uint64_t(1) << 32) + 1);  // int(...) made this 1 layer before
  g.write(p);
  expect_error([&] { open_model(p); }, {p, "llama.block_count", "out of range"});
  g = test::TinyGguf::llama(32, 32, 2, 1, 4);
  g.kv_u64("llama.attention.head_count", (uint64_t(1) << 32) + 2);
  g.write(p);
  expect_error([&] { open_model(p); }, {p, "llama.attention.head_count", "out of range"});
}

TEST(CraftedModels, GgufTensorDimensionsWhoseProductWrapsAreRefused) {
  test::ScratchDir dir;
  const auto p = (dir / "m.gguf").string();
  auto g = test::TinyGguf::llama(32, 32, 2, 1, 4);
  g.tensor_values("junk.weight", {32, int64_t(1) << 40, int64_t(1) << 40}, std::vector<float>(32));  // 2^85 elements: wrapped before
  g.write(p);
  expect_error([&] { open_model(p); }, {p, "junk.weight", "overflows"});
}

TEST(CraftedModels, GgufAbsurdAlignmentIsRefused) {
  test::ScratchDir dir;
  const auto p = (dir / "m.gguf").string();
  auto g = test::TinyGguf::llama(32, 32, 2, 1, 4);
  g.kv_u64("general.alignment", uint64_t(1) << 63);  // (pos + align - 1) wrapped
  g.write(p);
  expect_error([&] { open_model(p); }, {p, "general.alignment"});
}

TEST(CraftedModels, GgufWithMoreLayersThanBlockCountIsRefused) {
  test::ScratchDir dir;
  const auto p = (dir / "m.gguf").string();
  auto g = test::TinyGguf::llama(32, 32, 2, 1, 4);
  g.tensor("blk.1.attn_norm.weight", {32});
  g.write(p);
  expect_error([&] { open_model(p); }, {p, "llama.block_count", "blk.1.attn_norm.weight"});
}

TEST(CraftedModels, GgufNonsenseScalarsAreRefused) {
  test::ScratchDir dir;
  const auto p = (dir / "m.gguf").string();
  for (float eps : {-1e-5f, std::nanf(""), 0.0f}) {
    auto g = test::TinyGguf::llama(32, 32, 2, 1, 4);
    g.kv_f32("llama.attention.layer_norm_rms_epsilon", eps);
    g.write(p);
    expect_error([&] { open_model(p); }, {p, "rms_norm_eps"});
  }
  for (float theta : {0.0f, -10000.0f}) {
    auto g = test::TinyGguf::llama(32, 32, 2, 1, 4);
    g.kv_f32("llama.rope.freq_base", theta);
    g.write(p);
    expect_error([&] { open_model(p); }, {p, "rope_theta"});
  }
  auto g = test::TinyGguf::llama(32, 32, 2, 1, 4);
  g.kv_u32("tokenizer.ggml.eos_token_id", 4);  // vocab is 4: ids 0..3
  g.write(p);
  expect_error([&] { open_model(p); }, {p, "eos_token_id", "vocabulary"});
  g = test::TinyGguf::llama(32, 32, 2, 1, 4);
  g.kv_i32("tokenizer.ggml.bos_token_id", -3);
  g.write(p);
  expect_error([&] { open_model(p); }, {p, "tokenizer.ggml.bos_token_id", "out of range"});
}

// A llama2.c header whose sizes made the expected file size wrap around to the real one: the tensor views pointed
// gigabytes past the mapping.
TEST(CraftedModels, Llama2cHeaderSizesAreBoundedBeforeTheSizeCheck) {
  test::ScratchDir dir;
  const auto p = (dir / "m.bin").string();
  const int32_t huge_dim[7] = {1 << 30, 172, 5, 1 << 14, 1 << 14, 512, 512};
  dir.write("m.bin", pod_bytes(huge_dim, 28) + std::string(4096, '\0'));
  expect_error([&] { open_model(p); }, {p, "dim", "out of range"});
  const int32_t huge_vocab[7] = {64, 172, 5, 8, 4, INT32_MIN, 512};  // an unshared head of 2^31 rows
  dir.write("m.bin", pod_bytes(huge_vocab, 28) + std::string(4096, '\0'));
  expect_error([&] { open_model(p); }, {p, "vocab", "out of range"});
  const int32_t huge_hidden[7] = {64, INT32_MAX, 5, 8, 4, 512, 512};
  dir.write("m.bin", pod_bytes(huge_hidden, 28) + std::string(4096, '\0'));
  expect_error([&] { open_model(p); }, {p, "hidden_dim", "out of range"});
}

TEST(CraftedModels, SafetensorsShapeWhoseProductWrapsIsRefused) {
  test::ScratchDir dir;
  const auto p = (dir / "x.safetensors").string();
  const std::string header = R"({"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})";
  const uint64_t n = header.size();
  dir.write("x.safetensors", pod_bytes(&n, 8) + header);
  expect_error([&] { SafetensorsFile f(p); }, {p, "tensor w", "overflows"});
}

TEST(CraftedModels, HfIndexPathsOutsideTheModelDirectoryAreRefused) {
  test::ScratchDir dir;
  std::filesystem::create_directories(dir / "m");
  test::write_hf_dir((dir / "m").string(), test::tiny_desc(), test::tiny_desc());
  std::filesystem::rename(dir / "m" / "model.safetensors", dir / "outside.safetensors");
  for (const std::string& target : {std::string("../outside.safetensors"), (dir / "outside.safetensors").string()}) {
    nlohmann::json idx{{"weight_map", nlohmann::json::object()}};
    for (const auto& t : stored_tensors(test::tiny_desc())) idx["weight_map"][hf_tensor_name(t.name)] = target;
    std::ofstream(dir / "m" / "model.safetensors.index.json") << idx.dump();
    expect_error([&] { open_model((dir / "m").string()); }, {"model.safetensors.index.json", target, "not a file name"});
  }
}

TEST(CraftedModels, HfConfigWithFewerLayersThanTheCheckpointIsRefused) {
  test::ScratchDir dir;
  ModelDesc cfg = test::tiny_desc(), weights = test::tiny_desc();
  cfg.layers.resize(1);  // num_hidden_layers: 1 over a 2-layer checkpoint ran 1 layer silently
  test::write_hf_dir(dir.path().string(), cfg, weights);
  expect_error([&] { open_model(dir.path().string()); }, {"config.json", "num_hidden_layers", "model.layers.1."});
}

TEST(CraftedModels, HfIntegersMustBeWholeAndInRange) {
  test::ScratchDir dir;
  test::write_hf_dir(dir.path().string(), test::tiny_desc(), test::tiny_desc());
  const auto cfg_path = dir / "config.json";
  const nlohmann::json good = nlohmann::json::parse(test::read_file(cfg_path));
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, nlohmann::json>>{{"num_attention_heads", 4294967300ull},
                                                           {"num_hidden_layers", 2.5},
                                                           {"hidden_size", -32},
                                                           {"rms_norm_eps", -1e-6},
                                                           {"vocab_size", int64_t(1) << 40}}) {
    nlohmann::json j = good;
    j[key] = value;
    std::ofstream(cfg_path) << j.dump();
    expect_error([&] { open_model(dir.path().string()); }, {"config.json"});
    try {
      open_model(dir.path().string());
    } catch (const std::exception& e) {
      const std::string msg = e.what();
      const bool names_it = msg.find(key) != std::string::npos || (key == "hidden_size" && msg.find("dim") != std::string::npos) ||
                            (key == "vocab_size" && msg.find("vocab") != std::string::npos);
      EXPECT_TRUE(names_it) << key << ": " << msg;
    }
  }
}

TEST(CraftedModels, FifoAsModelPathIsAnErrorNotAHang) {
  test::ScratchDir dir;
  for (const std::string name : {"m.gguf", "m.bin", "fifo"}) {
    const auto p = (dir / name).string();
    ASSERT_EQ(mkfifo(p.c_str(), 0600), 0);
    auto f = std::async(std::launch::async, [&] {
      try {
        open_model(p);
        return std::string("no error");
      } catch (const std::exception& e) {
        return std::string(e.what());
      }
    });
    ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready) << name << ": open_model hangs on a FIFO";
    const std::string msg = f.get();
    EXPECT_NE(msg.find(p), std::string::npos) << msg;
    EXPECT_NE(msg.find("FIFO"), std::string::npos) << msg;
  }
}

TEST(CraftedModels, SpecialTokenIdsOutsideTheVocabularyAreRefused) {
  test::ScratchDir dir;
  const auto p = (dir / "v.gguf").string();
  auto g = test::TinyGguf::llama(32, 32, 2, 1, 4);
  g.kv_str_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a"});
  g.kv_f32_array("tokenizer.ggml.scores", {0, 0, 0, -1});
  g.kv_u32("tokenizer.ggml.eos_token_id", 7);  // was dropped silently: generation then never stopped on EOS
  g.write(p);
  expect_error([&] { load_tokenizer(p); }, {p, "eos token id 7", "vocabulary of 4"});
  g.kv_u32("tokenizer.ggml.eos_token_id", 0xFFFFFFFFu);  // GGUF's "none" stays none
  g.write(p);
  EXPECT_NO_THROW(load_tokenizer(p));
}

TEST(CraftedModels, TokenizerJsonOfWrongTypesNamesTheFile) {
  test::ScratchDir dir;
  const auto p = (dir / "tokenizer.json").string();
  for (const std::string text : {R"({"model":{"type":"BPE","vocab":{"a":"x"},"merges":[]}})",
                                 R"({"model":{"type":"BPE","vocab":{"a":1},"merges":[]},"added_tokens":[{"id":"x"}]})",
                                 R"({"model":{"type":"BPE","vocab":{"a":1},"merges":[]},"pre_tokenizer":{"type":5}})"}) {
    dir.write("tokenizer.json", text);
    expect_error([&] { load_tokenizer(p); }, {p, "malformed tokenizer file"});
  }
}

}  // namespace
}  // namespace hpcinfer
