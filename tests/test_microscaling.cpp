// The released MoE checkpoints' weight encodings, decoded at load (core/formats/microscaling.hpp):
//   - the decoders alone: all 16 E2M1 codes at extreme E8M0 scales, all 256 FP8 E4M3 codes, against formulas
//     computed here in double;
//   - through the loader: gpt-oss-tiny rewritten with MXFP4 experts (random codes and scales, in the released
//     [E, out, in / 32, 16] orientation) against the same model with those decoded values in transformers' bf16 fused
//     layout [E, in, 2 ff]; deepseek-v3-tiny rewritten with FP8 weights and 128-block scales (as DeepSeek's releases,
//     here 16-blocks to span several blocks) against the same model with the decoded values in f32. The logits must
//     be bitwise equal: both sides hold the same f32 weights only if every cut, transpose and interleave is right.
//   - bad input: MXFP4 scales of the wrong shape, FP8 scales of the wrong shape, named in the error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "core/formats/microscaling.hpp"
#include "core/formats/safetensors.hpp"
#include "kernels/cpu/convert.hpp"
#include "support/test_support.hpp"

namespace hpcinfer {
namespace {

namespace fs = std::filesystem;
using test::run_command;
using test::shell_quote;

TEST(Microscaling, E2M1CodesAtExtremeScales) {
  const double values[16] = {0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6};
  for (int s : {0, 1, 2, 126, 127, 128, 200, 253, 254}) {
    uint8_t blocks[16], scale = uint8_t(s);
    for (int i = 0; i < 16; ++i) blocks[i] = uint8_t(i | ((15 - i) << 4));  // low nibble i, high nibble 15 - i
    float out[32];
    formats::dequantize_mxfp4_row(blocks, &scale, 32, out);
    for (int i = 0; i < 16; ++i) {
      const double lo = values[i] * std::ldexp(1.0, s - 127), hi = values[15 - i] * std::ldexp(1.0, s - 127);
      // Exact in f32 where representable; beyond f32's range (2 x 2^127 and up) it overflows to +-inf.
      EXPECT_EQ(double(out[2 * i]), std::abs(lo) > 3.4028234663852886e38 ? std::copysign(INFINITY, lo) : lo)
          << "code " << i << " scale " << s;
      EXPECT_EQ(double(out[2 * i + 1]), std::abs(hi) > 3.4028234663852886e38 ? std::copysign(INFINITY, hi) : hi)
          << "code " << 15 - i << " scale " << s;
      EXPECT_EQ(std::signbit(out[2 * i]), i >= 8);  // -0 keeps its sign
    }
  }
  EXPECT_TRUE(std::isnan(formats::e8m0_to_f32(255)));
  EXPECT_EQ(formats::e8m0_to_f32(0), std::ldexp(1.0f, -127));  // a subnormal f32, exact
}

TEST(Microscaling, Fp8E4m3AllCodesAndBlockScales) {
  for (int b = 0; b < 256; ++b) {
    const int sign = b >> 7, e = (b >> 3) & 15, m = b & 7;
    const float got = kernels::e4m3fn_to_f32(uint8_t(b));
    if (e == 15 && m == 7) {
      EXPECT_TRUE(std::isnan(got)) << b;
      continue;
    }
    const double want = (sign ? -1.0 : 1.0) * (e == 0 ? m / 8.0 * std::ldexp(1.0, -6) : (1 + m / 8.0) * std::ldexp(1.0, e - 7));
    EXPECT_EQ(double(got), want) << "code " << b;
  }
  EXPECT_EQ(kernels::e4m3fn_to_f32(0x7E), 448.0f);  // the largest finite E4M3
  // Block scales: [3 rows, 5 cols] in blocks of 2: scale [2][3].
  const uint8_t w[15] = {0x38, 0x38, 0x38, 0x38, 0x38, 0x38, 0x38, 0x38, 0x38, 0x38, 0x38, 0x38, 0x38, 0x38, 0x38};  // 1.0
  const float scale[6] = {1, 2, 3, 4, 5, 6};
  for (int r = 0; r < 3; ++r) {
    float out[5];
    formats::dequantize_fp8_row(w + r * 5, r, 5, scale, 3, 2, out);
    for (int c = 0; c < 5; ++c) EXPECT_EQ(out[c], scale[(r / 2) * 3 + c / 2]) << r << " " << c;
  }
}

// ---- through the loader ----

struct RawTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

void write_safetensors(const fs::path& file, const std::map<std::string, RawTensor>& tensors) {
  nlohmann::json h = nlohmann::json::object();
  uint64_t off = 0;
  for (const auto& [name, t] : tensors) {
    h[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.bytes.size()}}};
    off += t.bytes.size();
  }
  std::string hs = h.dump();
  hs.append((8 - hs.size() % 8) % 8, ' ');
  std::ofstream out(file, std::ios::binary);
  const uint64_t n = hs.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << hs;
  for (const auto& [name, t] : tensors) out.write(reinterpret_cast<const char*>(t.bytes.data()), std::streamsize(t.bytes.size()));
}

std::map<std::string, RawTensor> read_all(const fs::path& file) {
  SafetensorsFile f(file.string());
  std::map<std::string, RawTensor> out;
  for (const SafetensorsTensorInfo& t : f.tensors()) {
    const TensorView v = f.view(t);
    const auto* p = static_cast<const uint8_t*>(v.data);
    out[t.name] = {t.dtype_name, t.shape, std::vector<uint8_t>(p, p + (t.end - t.begin))};
  }
  return out;
}

RawTensor f32_tensor(std::vector<int64_t> shape, const std::vector<float>& v) {
  RawTensor t{"F32", std::move(shape), std::vector<uint8_t>(v.size() * 4)};
  std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
  return t;
}

std::vector<float> logits_of(const std::string& model, const std::vector<int>& tokens, const fs::path& out) {
  std::string toks;
  for (int t : tokens) toks += (toks.empty() ? "" : ",") + std::to_string(t);
  const auto r = run_command(test::bin() + " logits --model " + shell_quote(model) + " --weights f32 --tokens " + toks +
                             " --out " + shell_quote(out.string()) + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const std::string raw = test::read_file(out);
  std::vector<float> l(raw.size() / 4);
  std::memcpy(l.data(), raw.data(), raw.size());
  return l;
}

const std::vector<int> kTokens{1, 17, 99, 250, 3, 42, 7, 300, 128, 5, 64, 200};

TEST(MicroscalingLoader, GptOssMxfp4ExpertsEqualTheirDecodedBf16Layout) {
  HPCINFER_REQUIRE_DATA("reference/hf/gpt-oss-tiny/config.json");
  const fs::path src = test::shared_data() / "reference/hf/gpt-oss-tiny";
  const auto cfg = nlohmann::json::parse(test::read_file(src / "config.json"));
  const int64_t E = cfg["num_local_experts"], dim = cfg["hidden_size"], ff = cfg["intermediate_size"];
  const int L = cfg["num_hidden_layers"];
  test::ScratchDir dir;
  std::map<std::string, RawTensor> mx = read_all(src / "model.safetensors"), bf = mx;
  std::mt19937 rng(7);
  auto to_bf16 = [](float x) { uint32_t u; std::memcpy(&u, &x, 4); return uint16_t(u >> 16); };  // exact for these
  for (int l = 0; l < L; ++l) {
    const std::string pre = "model.layers." + std::to_string(l) + ".mlp.experts.";
    // name, rows (out features in the MXFP4 orientation), cols (in); bf16 layout [E, in, out] = the transpose.
    for (const auto& [name, rows, cols] : {std::tuple{std::string("gate_up_proj"), 2 * ff, dim},
                                           std::tuple{std::string("down_proj"), dim, ff}}) {
      const int64_t groups = cols / 32;
      RawTensor blocks{"U8", {E, rows, groups, 16}, std::vector<uint8_t>(size_t(E * rows * groups * 16))};
      RawTensor scales{"U8", {E, rows, groups}, std::vector<uint8_t>(size_t(E * rows * groups))};
      for (auto& b : blocks.bytes) b = uint8_t(rng());
      for (auto& s : scales.bytes) s = uint8_t(120 + rng() % 8);  // weights of 2^-7 .. 1 x the E2M1 values
      RawTensor dense{"BF16", {E, cols, rows}, std::vector<uint8_t>(size_t(E * rows * cols * 2))};
      std::vector<float> row(static_cast<size_t>(cols));
      for (int64_t e = 0; e < E; ++e)
        for (int64_t r = 0; r < rows; ++r) {
          const size_t fr = size_t(e * rows + r);
          formats::dequantize_mxfp4_row(blocks.bytes.data() + fr * size_t(groups) * 16, scales.bytes.data() + fr * size_t(groups),
                                        cols, row.data());
          for (int64_t c = 0; c < cols; ++c) {
            const uint16_t h = to_bf16(row[size_t(c)]);
            std::memcpy(dense.bytes.data() + size_t((e * cols + c) * rows + r) * 2, &h, 2);
          }
        }
      mx.erase(pre + name);
      mx[pre + name + "_blocks"] = blocks;
      mx[pre + name + "_scales"] = scales;
      bf[pre + name] = dense;
    }
  }
  for (const char* d : {"mx", "bf"}) {
    fs::create_directories(dir / d);
    fs::copy_file(src / "config.json", dir / d / "config.json");
  }
  write_safetensors(dir / "mx/model.safetensors", mx);
  write_safetensors(dir / "bf/model.safetensors", bf);
  const auto a = logits_of((dir / "mx").string(), kTokens, dir / "a.f32"), b = logits_of((dir / "bf").string(), kTokens, dir / "b.f32");
  ASSERT_EQ(a.size(), kTokens.size() * 512);
  EXPECT_EQ(a, b);

  // Scales of the wrong shape: the error names the tensor and both shapes.
  mx["model.layers.1.mlp.experts.down_proj_scales"].shape = {E, dim, ff / 32 - 1};
  mx["model.layers.1.mlp.experts.down_proj_scales"].bytes.resize(size_t(E * dim * (ff / 32 - 1)));
  write_safetensors(dir / "mx/model.safetensors", mx);
  const auto r = run_command(test::bin() + " logits --model " + shell_quote((dir / "mx").string()) +
                             " --tokens 1 --out " + shell_quote((dir / "x.f32").string()) + " 2>&1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("model.layers.1.mlp.experts.down_proj_scales: expected U8 [8, 64, 2]"), std::string::npos)
      << r.output;
}

TEST(MicroscalingLoader, DeepSeekFp8WeightsEqualTheirDecodedF32) {
  HPCINFER_REQUIRE_DATA("reference/hf/deepseek-v3-tiny/config.json");
  const fs::path src = test::shared_data() / "reference/hf/deepseek-v3-tiny";
  auto cfg = nlohmann::json::parse(test::read_file(src / "config.json"));
  const int64_t block = 16;
  cfg["quantization_config"] = {{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"weight_block_size", {block, block}}};
  test::ScratchDir dir;
  std::map<std::string, RawTensor> fp8 = read_all(src / "model.safetensors"), f32 = fp8;
  std::mt19937 rng(11);
  int converted = 0;
  for (const auto& [name, t] : read_all(src / "model.safetensors")) {
    // Every 2-D projection weight, as DeepSeek's releases (norms, router, embeddings stay).
    if (t.shape.size() != 2 || name.find("layernorm") != std::string::npos || name.find("mlp.gate.") != std::string::npos ||
        name.find("embed") != std::string::npos || name.find("lm_head") != std::string::npos)
      continue;
    const int64_t rows = t.shape[0], cols = t.shape[1], sr = (rows + block - 1) / block, sc = (cols + block - 1) / block;
    RawTensor q{"F8_E4M3", {rows, cols}, std::vector<uint8_t>(size_t(rows * cols))};
    for (auto& b : q.bytes) {
      b = uint8_t(rng());
      if ((b & 0x7F) == 0x7F) b ^= 1;  // no NaN codes
    }
    std::vector<float> scale(static_cast<size_t>(sr * sc)), dense(static_cast<size_t>(rows * cols));
    for (float& s : scale) s = std::ldexp(1.0f + float(rng() % 1000) / 1000.0f, -12);  // not powers of two
    for (int64_t r = 0; r < rows; ++r)
      formats::dequantize_fp8_row(q.bytes.data() + r * cols, r, cols, scale.data(), sc, block, dense.data() + r * cols);
    fp8[name] = q;
    fp8[name + "_scale_inv"] = f32_tensor({sr, sc}, scale);
    f32[name] = f32_tensor({rows, cols}, dense);
    ++converted;
  }
  ASSERT_GT(converted, 20);  // q_a/q_b/kv_a/kv_b/o of 3 layers, dense and expert MLPs
  for (const char* d : {"fp8", "f32"}) fs::create_directories(dir / d);
  std::ofstream(dir / "fp8/config.json") << cfg.dump(2);
  fs::copy_file(src / "config.json", dir / "f32/config.json");
  write_safetensors(dir / "fp8/model.safetensors", fp8);
  write_safetensors(dir / "f32/model.safetensors", f32);
  const auto a = logits_of((dir / "fp8").string(), kTokens, dir / "a.f32"), b = logits_of((dir / "f32").string(), kTokens, dir / "b.f32");
  ASSERT_EQ(a.size(), kTokens.size() * 512);
  EXPECT_EQ(a, b);

  // Scales of the wrong shape.
  auto& s = fp8["model.layers.0.self_attn.o_proj.weight_scale_inv"];
  s.shape = {1, 1};
  s.bytes.resize(4);
  write_safetensors(dir / "fp8/model.safetensors", fp8);
  const auto r = run_command(test::bin() + " logits --model " + shell_quote((dir / "fp8").string()) +
                             " --tokens 1 --out " + shell_quote((dir / "x.f32").string()) + " 2>&1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("model.layers.0.self_attn.o_proj.weight_scale_inv: expected F32 [4, 4]"), std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace hpcinfer
