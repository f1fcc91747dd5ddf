// `hpcinfer make-model`: presets write Hugging Face directories that reload with the preset's description and the
// seed's exact values; --from converts llama2.c / GGUF models (q/k rotate-half) and keeps the tokenizer reachable.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/formats/dequantize.hpp"
#include "core/model/model_source.hpp"
#include "core/model/presets.hpp"
#include "support/test_support.hpp"

namespace fs = std::filesystem;

namespace hpcinfer {
namespace {

test::CommandResult make_model(const std::string& args) { return test::run_command(test::bin() + " make-model " + args); }

void expect_same_desc(const ModelDesc& a, const ModelDesc& b) {
  EXPECT_EQ(a.arch, b.arch);
  EXPECT_EQ(a.dim, b.dim);
  EXPECT_EQ(a.layers[0].ffn.hidden_dim, b.layers[0].ffn.hidden_dim);
  EXPECT_EQ(a.n_layers(), b.n_layers());
  EXPECT_EQ(a.layers[0].attn.n_heads, b.layers[0].attn.n_heads);
  EXPECT_EQ(a.layers[0].attn.n_kv_heads, b.layers[0].attn.n_kv_heads);
  EXPECT_EQ(a.layers[0].attn.head_dim, b.layers[0].attn.head_dim);
  EXPECT_EQ(a.vocab, b.vocab);
  EXPECT_EQ(a.max_seq_len, b.max_seq_len);
  EXPECT_FLOAT_EQ(a.norm_eps, b.norm_eps);
  EXPECT_FLOAT_EQ(a.layers[0].attn.rope.theta, b.layers[0].attn.rope.theta);
  EXPECT_FLOAT_EQ(a.layers[0].attn.rope.factor, b.layers[0].attn.rope.factor);
  EXPECT_EQ(a.layers[0].attn.rope.original_max_position, b.layers[0].attn.rope.original_max_position);
  EXPECT_EQ(a.tied_embeddings, b.tied_embeddings);
  EXPECT_EQ(a.layers[0].attn.qkv_bias, b.layers[0].attn.qkv_bias);
  EXPECT_EQ(a.bos_id, b.bos_id);
  EXPECT_EQ(a.eos_id, b.eos_id);
}

std::vector<float> as_f32(const TensorView& v) {
  std::vector<float> out(size_t(v.rows * v.cols));
  for (int64_t r = 0; r < v.rows; ++r) formats::dequantize_row(v.dtype, v.row_ptr(r), v.cols, out.data() + r * v.cols);
  return out;
}

class TinyPresets : public ::testing::TestWithParam<const char*> {};

TEST_P(TinyPresets, ReloadWithSameDescriptionAndSeedValues) {
  test::ScratchDir dir;
  const std::string name = GetParam();
  auto r = make_model("--preset " + name + " --seed 7 --dtype f32 --out " + test::shell_quote((dir / "m").string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto m = open_model((dir / "m").string());
  const ModelPreset* p = find_preset(name);
  ASSERT_NE(p, nullptr);
  expect_same_desc(m->desc(), p->desc);
  EXPECT_EQ(m->format(), "hf");
  int checked = 0;
  for (const auto& t : m->tensor_names()) {
    const TensorView v = m->tensor(t);
    ASSERT_EQ(v.dtype, DType::f32);
    std::vector<float> want(size_t(v.rows * v.cols));
    random_weight_rows(7, t, 0, v.rows, v.cols, want.data());
    ASSERT_EQ(std::memcmp(v.data, want.data(), want.size() * 4), 0) << t;
    ++checked;
  }
  EXPECT_EQ(checked, int(m->tensor_names().size()));
  EXPECT_GT(checked, 10);
}
INSTANTIATE_TEST_SUITE_P(MakeModel, TinyPresets, ::testing::Values("tiny-gqa", "tiny-odd", "tiny-qwen2"));

TEST(MakeModel, SeedDeterminesBytesAndBf16Rounds) {
  test::ScratchDir dir;
  for (const char* sub : {"a", "b", "c"}) {
    const std::string seed = std::string(sub) == "c" ? "9" : "5";
    auto r = make_model("--preset tiny-gqa --seed " + seed + " --out " + test::shell_quote((dir / sub).string()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  const auto a = test::read_file(dir / "a/model.safetensors"), b = test::read_file(dir / "b/model.safetensors"),
             c = test::read_file(dir / "c/model.safetensors");
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(a.size(), c.size());
  auto m = open_model((dir / "a").string());
  const TensorView wk = m->tensor("layers.2.wk");
  ASSERT_EQ(wk.dtype, DType::bf16);  // bf16 by default
  std::vector<float> want(size_t(wk.rows * wk.cols));
  random_weight_rows(5, "layers.2.wk", 0, wk.rows, wk.cols, want.data());
  const auto got = as_f32(wk);
  double sum2 = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(got[i], formats::bf16_to_f32(formats::f32_to_bf16(want[i]))) << i;
    sum2 += double(got[i]) * got[i];
  }
  const double sd = std::sqrt(sum2 / double(want.size()));
  EXPECT_GT(sd, 0.015);
  EXPECT_LT(sd, 0.025);
  EXPECT_EQ(as_f32(m->tensor("layers.0.attn_norm")), std::vector<float>(64, 1.0f));
}

TEST(MakeModel, ShardsWithIndex) {
  test::ScratchDir dir;
  auto r = make_model("--preset tiny-odd --dtype f16 --shard-mb 0.1 --out " + test::shell_quote(dir.path().string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(fs::exists(dir / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(dir / "model.safetensors"));
  auto index = nlohmann::json::parse(test::read_file(dir / "model.safetensors.index.json"));
  std::set<std::string> files;
  for (auto& [k, v] : index["weight_map"].items()) files.insert(v.get<std::string>());
  EXPECT_GT(files.size(), size_t(2));
  auto m = open_model(dir.path().string());
  const TensorView out = m->tensor("output");
  std::vector<float> want(size_t(out.rows * out.cols));
  random_weight_rows(0, "output", 0, out.rows, out.cols, want.data());
  const auto got = as_f32(out);
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], formats::f16_to_f32(formats::f32_to_f16(want[i])));
}

TEST(MakeModel, FromLlama2cRoundTrips) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  test::ScratchDir dir;
  const auto bin = (test::shared_data() / "models/stories260K/stories260K.bin").string();
  auto r = make_model("--from " + test::shell_quote(bin) + " --out " + test::shell_quote(dir.path().string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto src = open_model(bin);
  auto hf = open_model(dir.path().string());
  expect_same_desc(hf->desc(), src->desc());
  ASSERT_EQ(hf->tensor_names(), src->tensor_names());
  for (const auto& t : src->tensor_names()) {
    const TensorView a = src->tensor(t), b = hf->tensor(t);
    ASSERT_EQ(b.dtype, DType::f32) << t;  // F32 stays F32
    ASSERT_EQ(std::memcmp(a.data, b.data, size_t(a.rows * a.cols) * 4), 0) << t;
  }
  EXPECT_EQ(hf->tokenizer_path(), (dir / "tok512.bin").string());
  EXPECT_EQ(test::read_file(dir / "tok512.bin"),
            test::read_file(test::shared_data() / "models/stories260K/tok512.bin"));
}

TEST(MakeModel, FromGgufKeepsF16AndPointsAtTheVocabulary) {
  HPCINFER_REQUIRE_DATA("models/llama-2-tiny-random-gguf/llama-2-tiny-random.gguf");
  test::ScratchDir dir;
  const auto gguf = (test::shared_data() / "models/llama-2-tiny-random-gguf/llama-2-tiny-random.gguf").string();
  auto r = make_model("--from " + test::shell_quote(gguf) + " --out " + test::shell_quote(dir.path().string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto src = open_model(gguf);
  auto hf = open_model(dir.path().string());
  expect_same_desc(hf->desc(), src->desc());
  EXPECT_EQ(hf->tensor("layers.0.wq").dtype, DType::f16);
  EXPECT_EQ(hf->tensor("layers.0.attn_norm").dtype, DType::f32);
  for (const auto& t : src->tensor_names()) EXPECT_EQ(as_f32(src->tensor(t)), as_f32(hf->tensor(t))) << t;
  EXPECT_EQ(hf->tokenizer_path(), fs::absolute(gguf).string());
  // --dtype overrides per-tensor dtypes.
  r = make_model("--from " + test::shell_quote(gguf) + " --dtype f32 --force --out " + test::shell_quote(dir.path().string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(open_model(dir.path().string())->tensor("layers.0.wq").dtype, DType::f32);
}

TEST(MakeModel, ConfigOnlyAndBigPresets) {
  test::ScratchDir dir;
  auto r = make_model("--preset llama-3-70b --out " + test::shell_quote((dir / "70b").string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("--weights"), std::string::npos) << r.output;  // says how to get the weights
  EXPECT_TRUE(fs::exists(dir / "70b/config.json"));
  EXPECT_FALSE(fs::exists(dir / "70b/model.safetensors"));
  r = make_model("--preset llama-3.1-8b --config-only --out " + test::shell_quote((dir / "8b").string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto cfg = nlohmann::json::parse(test::read_file(dir / "8b/config.json"));
  EXPECT_EQ(cfg["num_key_value_heads"], 8);
  EXPECT_EQ(cfg["vocab_size"], 128256);
  EXPECT_EQ(cfg["rope_theta"], 500000.0);
  EXPECT_EQ(cfg["rms_norm_eps"], 1e-5);
  EXPECT_EQ(cfg["rope_scaling"]["rope_type"], "llama3");
  EXPECT_EQ(cfg["rope_scaling"]["factor"], 8.0);
  EXPECT_FALSE(fs::exists(dir / "8b/model.safetensors"));
}

TEST(MakeModel, UsageErrors) {
  test::ScratchDir dir;
  EXPECT_EQ(make_model("").exit_code, 2);
  EXPECT_EQ(make_model("--help").exit_code, 0);
  auto r = make_model("--preset no-such-model --out " + test::shell_quote(dir.path().string()));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("no-such-model"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("tiny-gqa"), std::string::npos) << r.output;  // lists the presets
  EXPECT_EQ(make_model("--preset tiny-gqa").exit_code, 2);               // no --out
  EXPECT_EQ(make_model("--preset tiny-gqa --dtype q4 --out x").exit_code, 2);
  EXPECT_EQ(make_model("--preset tiny-gqa --bogus --out x").exit_code, 2);
  ASSERT_EQ(make_model("--preset tiny-gqa --out " + test::shell_quote(dir.path().string())).exit_code, 0);
  r = make_model("--preset tiny-gqa --out " + test::shell_quote(dir.path().string()));
  EXPECT_EQ(r.exit_code, 2);  // refuses to overwrite without --force
  EXPECT_NE(r.output.find("--force"), std::string::npos) << r.output;
  r = make_model("--from " + test::shell_quote((dir / "absent.bin").string()) + " --out " +
                 test::shell_quote((dir / "o").string()));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("absent.bin"), std::string::npos) << r.output;
  r = make_model("--list");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* n : {"tinyllama-1.1b", "llama-2-7b", "llama-3-8b", "llama-3-70b", "openllama-3b", "openllama-7b",
                        "smollm2-135m", "tiny-qwen2"})
    EXPECT_NE(r.output.find(n), std::string::npos) << n;
}

TEST(MakeModel, PresetParameterCountsMatchPublishedSizes) {
  // Published parameter counts (model cards): shapes are right when these come out.
  EXPECT_NEAR(double(param_count(find_preset("llama-2-7b")->desc)), 6.738e9, 0.01e9);
  EXPECT_NEAR(double(param_count(find_preset("llama-3-8b")->desc)), 8.030e9, 0.01e9);
  EXPECT_NEAR(double(param_count(find_preset("llama-3-70b")->desc)), 70.55e9, 0.05e9);
  EXPECT_NEAR(double(param_count(find_preset("tinyllama-1.1b")->desc)), 1.100e9, 0.01e9);
  EXPECT_NEAR(double(param_count(find_preset("smollm2-135m")->desc)), 134.5e6, 0.1e6);
  EXPECT_NEAR(double(param_count(find_preset("llama-3.2-1b")->desc)), 1.236e9, 0.01e9);
  // MoE (the model cards' totals): experts, routers, shared experts, MLA, sinks and biases all counted.
  EXPECT_NEAR(double(param_count(find_preset("mixtral-8x7b")->desc)), 46.70e9, 0.01e9);
  EXPECT_NEAR(double(param_count(find_preset("qwen3-30b-a3b")->desc)), 30.53e9, 0.01e9);
  EXPECT_NEAR(double(param_count(find_preset("gpt-oss-120b")->desc)), 116.83e9, 0.01e9);
  EXPECT_NEAR(double(param_count(find_preset("gpt-oss-20b")->desc)), 20.91e9, 0.01e9);
  EXPECT_NEAR(double(param_count(find_preset("deepseek-v3")->desc)), 671.0e9, 0.1e9);  // without the 14B MTP layer
}

}  // namespace
}  // namespace hpcinfer
