// Bad model files: every error must name the file and the tensor or key that is wrong.
#include <filesystem>
#include <fstream>

#include "core/formats/safetensors.hpp"
#include "core/model/model_source.hpp"
#include "support/test_support.hpp"
#include "test_formats_helpers.hpp"

namespace hpcinfer {
namespace {

using test::expect_error;

std::string header_file(const std::string& header, const std::string& data) {
  const uint64_t n = header.size();
  return std::string(reinterpret_cast<const char*>(&n), 8) + header + data;
}

TEST(FormatErrors, SafetensorsTruncated) {
  test::ScratchDir dir;
  const auto p = (dir / "model.safetensors").string();
  dir.write("model.safetensors", "abc");
  expect_error([&] { SafetensorsFile f(p); }, {p, "truncated"});
  // Header length says 1000 bytes, the file has 20.
  std::string s = header_file(std::string(12, ' '), "");
  const uint64_t big = 1000;
  std::memcpy(s.data(), &big, 8);
  dir.write("model.safetensors", s);
  expect_error([&] { SafetensorsFile f(p); }, {p, "header length 1000", "past the end"});
}

TEST(FormatErrors, SafetensorsHeaderNotJson) {
  test::ScratchDir dir;
  const auto p = (dir / "model.safetensors").string();
  dir.write("model.safetensors", header_file("{\"a\": [1, 2", ""));
  expect_error([&] { SafetensorsFile f(p); }, {p, "not valid JSON"});
}

TEST(FormatErrors, SafetensorsOffsetsPastTheEnd) {
  test::ScratchDir dir;
  const auto p = (dir / "model.safetensors").string();
  dir.write("model.safetensors",
            header_file(R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}})", std::string(8, '\0')));
  expect_error([&] { SafetensorsFile f(p); }, {p, "tensor w", "past the end"});
}

TEST(FormatErrors, SafetensorsOffsetsDisagreeWithShape) {
  test::ScratchDir dir;
  const auto p = (dir / "model.safetensors").string();
  dir.write("model.safetensors",
            header_file(R"({"w": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 16]}})", std::string(16, '\0')));
  expect_error([&] { SafetensorsFile f(p); }, {p, "tensor w", "needs 12"});
}

TEST(FormatErrors, HfTensorShapeDoesNotFitConfig) {
  test::ScratchDir dir;
  ModelDesc cfg = test::tiny_desc(), weights = test::tiny_desc();
  for (LayerSpec& l : weights.layers) l.ffn.hidden_dim = 96;  // the file's MLP is wider than config.json says
  test::write_hf_dir(dir.path().string(), cfg, weights);
  expect_error([&] { open_model(dir.path().string()); },
               {(dir / "model.safetensors").string(), "layers.0.w_gate", "model.layers.0.mlp.gate_proj.weight",
                "[96, 32]", "[64, 32]"});
}

TEST(FormatErrors, HfUnknownDtype) {
  test::ScratchDir dir;
  test::write_hf_dir(dir.path().string(), test::tiny_desc(), test::tiny_desc(), DType::f16);
  // Same width, a dtype nobody knows: "F16" -> "X16" everywhere in the header.
  std::string s = test::read_file(dir / "model.safetensors");
  for (size_t at; (at = s.find("\"F16\"")) != std::string::npos;) s.replace(at, 5, "\"X16\"");
  dir.write("model.safetensors", s);
  expect_error([&] { open_model(dir.path().string()); },
               {(dir / "model.safetensors").string(), "model.embed_tokens.weight", "X16"});
}

TEST(FormatErrors, HfMissingTensor) {
  test::ScratchDir dir;
  ModelDesc cfg = test::tiny_desc(), weights = test::tiny_desc();
  weights.layers.resize(1);
  test::write_hf_dir(dir.path().string(), cfg, weights);
  expect_error([&] { open_model(dir.path().string()); }, {"model.safetensors", "layers.1.attn_norm", "missing"});
}

TEST(FormatErrors, HfUnknownArchitecture) {
  test::ScratchDir dir;
  test::write_hf_dir(dir.path().string(), test::tiny_desc(), test::tiny_desc());
  auto cfg = nlohmann::json::parse(test::read_file(dir / "config.json"));
  cfg["architectures"] = {"GPTNeoXForCausalLM"};
  dir.write("config.json", cfg.dump());
  expect_error([&] { open_model(dir.path().string()); },
               {(dir / "config.json").string(), "architectures", "GPTNeoXForCausalLM"});
  cfg["architectures"] = {"LlamaForCausalLM"};
  cfg.erase("hidden_size");
  dir.write("config.json", cfg.dump());
  expect_error([&] { open_model(dir.path().string()); }, {(dir / "config.json").string(), "hidden_size"});
  cfg["hidden_size"] = 32;
  cfg["rope_scaling"] = {{"rope_type", "longrope"}, {"factor", 4.0}};
  dir.write("config.json", cfg.dump());
  expect_error([&] { open_model(dir.path().string()); }, {(dir / "config.json").string(), "rope_scaling", "longrope"});
}

TEST(FormatErrors, HfShardedIndexNamesAMissingFile) {
  test::ScratchDir dir;
  test::write_hf_dir(dir.path().string(), test::tiny_desc(), test::tiny_desc(), DType::f32, 4096);
  ASSERT_TRUE(std::filesystem::exists(dir / "model.safetensors.index.json"));
  EXPECT_EQ(open_model(dir.path().string())->desc().n_layers(), 2);  // sharded and intact: loads
  auto index = nlohmann::json::parse(test::read_file(dir / "model.safetensors.index.json"));
  const std::string shard = index["weight_map"]["model.layers.1.self_attn.q_proj.weight"];
  EXPECT_NE(shard, index["weight_map"]["model.embed_tokens.weight"]);  // really split
  std::filesystem::remove(dir / shard);
  expect_error([&] { open_model(dir.path().string()); }, {shard, "cannot open"});
}

TEST(FormatErrors, GgufBadMagicAndVersion) {
  test::ScratchDir dir;
  const auto p = (dir / "m.gguf").string();
  auto g = test::TinyGguf::llama(32, 32, 2, 1, 4);
  g.magic = 0x12345678;
  g.write(p);
  expect_error([&] { open_model(p); }, {p, "bad magic"});
  g.magic = 0x46554747u;
  g.version = 7;
  g.write(p);
  expect_error([&] { open_model(p); }, {p, "version 7"});
}

TEST(FormatErrors, GgufUnsupportedTensorType) {
  test::ScratchDir dir;
  const auto p = (dir / "m.gguf").string();
  auto g = test::TinyGguf::llama(32, 32, 2, 1, 4);
  g.set_type("blk.0.ffn_down.weight", 12);  // Q4_K
  g.write(p);
  expect_error([&] { open_model(p); }, {p, "blk.0.ffn_down.weight", "type 12"});
}

TEST(FormatErrors, GgufArchitectureAndShapes) {
  test::ScratchDir dir;
  const auto p = (dir / "m.gguf").string();
  auto g = test::TinyGguf::llama(32, 32, 2, 1, 4);
  g.kv_str("general.architecture", "falcon");
  g.write(p);
  expect_error([&] { open_model(p); }, {p, "general.architecture", "falcon"});
  g = test::TinyGguf::llama(32, 32, 2, 1, 4);
  g.kv_u32("llama.feed_forward_length", 64);
  g.write(p);
  expect_error([&] { open_model(p); }, {p, "layers.0.w_gate", "blk.0.ffn_gate.weight", "expected [64, 32]"});
  g = test::TinyGguf::llama(32, 32, 2, 1, 4);
  g.remove("blk.0.attn_v.weight");
  g.write(p);
  expect_error([&] { open_model(p); }, {p, "layers.0.wv", "blk.0.attn_v.weight", "missing"});
  g = test::TinyGguf::llama(32, 32, 2, 1, 4);
  g.kv_str("llama.block_count", "one");
  g.write(p);
  expect_error([&] { open_model(p); }, {p, "llama.block_count", "expected integer"});
}

TEST(FormatErrors, Llama2cWrongSize) {
  test::ScratchDir dir;
  const auto p = (dir / "m.bin").string();
  const int32_t h[7] = {64, 172, 5, 8, 4, 512, 512};
  dir.write("m.bin", std::string(reinterpret_cast<const char*>(h), 28) + std::string(1000, '\0'));
  expect_error([&] { open_model(p); }, {p, "file size 1028", "expected 1056540"});
  dir.write("m.bin", "ak42");
  expect_error([&] { open_model(p); }, {p, "too small"});
  const int32_t bad[7] = {64, 172, 5, 6, 4, 512, 512};  // 6 heads do not divide 64
  dir.write("m.bin", std::string(reinterpret_cast<const char*>(bad), 28));
  expect_error([&] { open_model(p); }, {p, "n_heads"});
}

TEST(FormatErrors, MissingTensorNamesTheCanonicalAndFileNames) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  auto m = open_model((test::shared_data() / "models/stories260K/stories260K.bin").string());
  expect_error([&] { m->tensor("output"); }, {"stories260K.bin", "output"});
}

}  // namespace
}  // namespace hpcinfer
