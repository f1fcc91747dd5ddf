// Loaders on the real reference files: llama2.c .bin and GGUF of the same model agree, q/k come out rotate-half,
// GGUF F16 and block-quantized tensors, dequantization, open_model() detection.
#include <cmath>
#include <cstring>
#include <fstream>

#include "core/formats/dequantize.hpp"
#include "kernels/cpu/convert.hpp"
#include "core/formats/gguf.hpp"
#include "core/model/base_source.hpp"
#include "core/model/model_source.hpp"
#include "test_formats_helpers.hpp"
#include "support/test_support.hpp"

namespace hpcinfer {
namespace {

const char* kBin = "models/stories260K/stories260K.bin";
const char* kGguf = "models/stories260K/stories260K.gguf";
const char* kTiny = "models/llama-2-tiny-random-gguf/llama-2-tiny-random.gguf";

std::string data(const char* rel) { return (test::shared_data() / rel).string(); }

bool same_bytes(const TensorView& a, const TensorView& b) {
  return a.dtype == b.dtype && a.rows == b.rows && a.cols == b.cols &&
         std::memcmp(a.data, b.data, dtype_row_bytes(a.dtype, a.cols) * size_t(a.rows)) == 0;
}

TEST(Formats, Llama2cDescriptionAndTokenizer) {
  HPCINFER_REQUIRE_DATA(kBin);
  auto m = open_model(data(kBin));
  const ModelDesc& d = m->desc();
  EXPECT_EQ(m->format(), "llama2c");
  EXPECT_EQ(d.dim, 64);
  EXPECT_EQ(d.layers[0].ffn.hidden_dim, 172);
  EXPECT_EQ(d.n_layers(), 5);
  EXPECT_EQ(d.layers[0].attn.n_heads, 8);
  EXPECT_EQ(d.layers[0].attn.n_kv_heads, 4);
  EXPECT_EQ(d.layers[0].attn.head_dim, 8);
  EXPECT_EQ(d.vocab, 512);
  EXPECT_EQ(d.max_seq_len, 512);
  EXPECT_TRUE(d.tied_embeddings);
  EXPECT_FALSE(m->has_tensor("output"));
  EXPECT_EQ(m->tensor_names().size(), size_t(2 + 5 * 9));
  EXPECT_EQ(m->tokenizer_path(), data("models/stories260K/tok512.bin"));
  TensorView wk = m->tensor("layers.4.wk");
  EXPECT_EQ(wk.rows, 32);
  EXPECT_EQ(wk.cols, 64);
  EXPECT_THROW(m->tensor("layers.5.wq"), std::runtime_error);
}

// llama2.c stores wq rows interleaved: canonical row h*hd + j is file row h*hd + 2j, row h*hd + hd/2 + j is 2j+1.
TEST(Formats, Llama2cQueryRowsArePermutedToRotateHalf) {
  HPCINFER_REQUIRE_DATA(kBin);
  auto m = open_model(data(kBin));
  std::ifstream f(data(kBin), std::ios::binary);
  // Header 28 bytes, token_embedding [512, 64], rms_att [5, 64], then wq [5, 64, 64]: layer 1 starts one matrix later.
  const size_t wq1 = 28 + 4 * size_t(512 * 64 + 5 * 64 + 64 * 64);
  std::vector<float> raw(64 * 64);
  f.seekg(std::streamoff(wq1));
  f.read(reinterpret_cast<char*>(raw.data()), std::streamsize(raw.size() * 4));
  TensorView wq = m->tensor("layers.1.wq");
  const auto* q = static_cast<const float*>(wq.data);
  for (int h = 0; h < 8; ++h)
    for (int j = 0; j < 4; ++j)
      for (int c = 0; c < 64; ++c) {
        ASSERT_EQ(q[(h * 8 + j) * 64 + c], raw[(h * 8 + 2 * j) * 64 + c]) << "head " << h << " row " << j;
        ASSERT_EQ(q[(h * 8 + 4 + j) * 64 + c], raw[(h * 8 + 2 * j + 1) * 64 + c]) << "head " << h << " row " << j;
      }
  // wv is not permuted: it is the mapping itself.
  EXPECT_EQ(m->tensor("layers.1.wq").data, wq.data);  // cached copy, same pointer on the second call
}

TEST(Formats, StoriesBinAndGgufAgree) {
  HPCINFER_REQUIRE_DATA(kBin);
  HPCINFER_REQUIRE_DATA(kGguf);
  auto bin = open_model(data(kBin));
  auto gguf = open_model(data(kGguf));
  EXPECT_EQ(gguf->format(), "gguf");
  const ModelDesc &a = bin->desc(), &b = gguf->desc();
  EXPECT_EQ(a.arch, b.arch);
  EXPECT_EQ(a.dim, b.dim);
  EXPECT_EQ(a.layers[0].ffn.hidden_dim, b.layers[0].ffn.hidden_dim);
  EXPECT_EQ(a.n_layers(), b.n_layers());
  EXPECT_EQ(a.layers[0].attn.n_heads, b.layers[0].attn.n_heads);
  EXPECT_EQ(a.layers[0].attn.n_kv_heads, b.layers[0].attn.n_kv_heads);
  EXPECT_EQ(a.layers[0].attn.head_dim, b.layers[0].attn.head_dim);
  EXPECT_EQ(a.vocab, b.vocab);
  EXPECT_FLOAT_EQ(a.norm_eps, b.norm_eps);
  EXPECT_FLOAT_EQ(a.layers[0].attn.rope.theta, b.layers[0].attn.rope.theta);
  EXPECT_EQ(a.bos_id, b.bos_id);
  EXPECT_EQ(a.eos_id, b.eos_id);
  // Known differences, reported as the files say them: the converter wrote context_length 128 and a separate
  // output.weight (a copy of the embeddings).
  EXPECT_EQ(b.max_seq_len, 128);
  EXPECT_FALSE(b.tied_embeddings);
  EXPECT_TRUE(same_bytes(gguf->tensor("output"), bin->tensor("tok_embeddings")));
  for (const auto& name : bin->tensor_names())
    EXPECT_TRUE(same_bytes(bin->tensor(name), gguf->tensor(name))) << name;
  EXPECT_EQ(gguf->tokenizer_path(), data(kGguf));
}

TEST(Formats, TinyRandomGgufF16) {
  HPCINFER_REQUIRE_DATA(kTiny);
  auto m = open_model(data(kTiny));
  const ModelDesc& d = m->desc();
  EXPECT_EQ(d.dim, 8);
  EXPECT_EQ(d.n_layers(), 1);
  EXPECT_EQ(d.layers[0].attn.n_heads, 2);
  EXPECT_EQ(d.layers[0].attn.head_dim, 4);
  EXPECT_EQ(d.vocab, 32000);
  EXPECT_EQ(d.layers[0].ffn.hidden_dim, 32);
  EXPECT_EQ(m->tensor("layers.0.wq").dtype, DType::f16);
  EXPECT_EQ(m->tensor("layers.0.w_down").dtype, DType::f16);
  EXPECT_EQ(m->tensor("layers.0.attn_norm").dtype, DType::f32);
  EXPECT_EQ(m->tensor("tok_embeddings").rows, 32000);
  // The permutation moves whole f16 rows: row j of head h = file row 2j.
  GgufFile raw(data(kTiny));
  TensorView file_wk = raw.view(*raw.find_tensor("blk.0.attn_k.weight"));
  TensorView wk = m->tensor("layers.0.wk");
  const size_t rb = dtype_row_bytes(DType::f16, 8);
  for (int h = 0; h < d.layers[0].attn.n_kv_heads; ++h)
    for (int j = 0; j < 2; ++j) {
      EXPECT_EQ(std::memcmp(wk.row_ptr(h * 4 + j), file_wk.row_ptr(h * 4 + 2 * j), rb), 0);
      EXPECT_EQ(std::memcmp(wk.row_ptr(h * 4 + 2 + j), file_wk.row_ptr(h * 4 + 2 * j + 1), rb), 0);
    }
}

// A tiny llama GGUF written here with a Q8_0 attn_q: block-quantized rows are permuted whole.
TEST(Formats, GgufQuantizedRowsPermuteWhole) {
  test::ScratchDir dir;
  test::TinyGguf g = test::TinyGguf::llama(/*dim*/ 32, /*hidden*/ 32, /*heads*/ 2, /*kv*/ 1, /*vocab*/ 4);
  g.set_type("blk.0.attn_q.weight", 8);  // Q8_0: [32 rows x 32 cols] -> 32 blocks of 34 bytes
  const auto path = (dir / "q8.gguf").string();
  g.write(path);
  auto m = open_model(path);
  TensorView wq = m->tensor("layers.0.wq");
  ASSERT_EQ(wq.dtype, DType::q8_0);
  GgufFile raw(path);
  TensorView fq = raw.view(*raw.find_tensor("blk.0.attn_q.weight"));
  for (int h = 0; h < 2; ++h)
    for (int j = 0; j < 8; ++j) {
      EXPECT_EQ(std::memcmp(wq.row_ptr(h * 16 + j), fq.row_ptr(h * 16 + 2 * j), 34), 0);
      EXPECT_EQ(std::memcmp(wq.row_ptr(h * 16 + 8 + j), fq.row_ptr(h * 16 + 2 * j + 1), 34), 0);
    }
  std::vector<float> row(32);
  formats::dequantize_row(DType::q8_0, wq.row_ptr(8), 32, row.data());  // = file row 1: scale 1/64, q[i] = 1 + i
  EXPECT_FLOAT_EQ(row[0], (1.0f + 0) / 64.0f);
  EXPECT_FLOAT_EQ(row[31], (1.0f + 31) / 64.0f);
  EXPECT_TRUE(m->desc().tied_embeddings);  // no output.weight in the file
  EXPECT_EQ(m->tokenizer_path(), "");      // no tokenizer.ggml.tokens
}

// Llama 3.1 GGUF files store rope_scaling as a factor table: recognized and turned back into parameters.
TEST(Formats, GgufRopeFreqsTableGivesLlama3Scaling) {
  test::ScratchDir dir;
  const auto path = (dir / "l3.gguf").string();
  const int64_t hd = 16;
  std::vector<float> table;
  for (int64_t i = 0; i < hd / 2; ++i) {  // llama.cpp's converter, factor 32, low 1, high 4, original 8192
    const double wavelen = 2 * M_PI * std::pow(500000.0, 2.0 * double(i) / double(hd));
    const double smooth = (8192.0 / wavelen - 1.0) / 3.0;
    table.push_back(wavelen < 2048 ? 1.0f : wavelen > 8192 ? 32.0f : float(1.0 / ((1 - smooth) / 32.0 + smooth)));
  }
  ASSERT_EQ(table.front(), 1.0f);
  ASSERT_EQ(table.back(), 32.0f);
  auto g = test::TinyGguf::llama(32, 32, 2, 1, 4);
  g.kv_f32("llama.rope.freq_base", 500000.0f);
  g.tensor_values("rope_freqs.weight", {hd / 2}, table);
  g.write(path);
  const ModelDesc d = open_model(path)->desc();
  EXPECT_FLOAT_EQ(d.layers[0].attn.rope.factor, 32.0f);
  EXPECT_FLOAT_EQ(d.layers[0].attn.rope.high_freq_factor, 4.0f);
  EXPECT_EQ(d.layers[0].attn.rope.original_max_position, 8192);
  table[3] = 7.0f;  // no published setting gives this table
  g.remove("rope_freqs.weight");
  g.tensor_values("rope_freqs.weight", {hd / 2}, table);
  g.write(path);
  try {
    open_model(path);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("rope_freqs.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(Formats, HalfFloatConversions) {
  using namespace formats;
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(70000.0f), 0x7c00);
  EXPECT_EQ(f32_to_f16(5.9604645e-8f), 0x0001);  // 2^-24, smallest subnormal
  EXPECT_EQ(f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);  // tie -> even
  EXPECT_EQ(f32_to_f16(1.0f + 3.0f / 2048), 0x3c02);  // tie -> even (up)
  for (uint32_t h = 0; h < 0x7c00; ++h) ASSERT_EQ(f32_to_f16(f16_to_f32(uint16_t(h))), h);
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_FLOAT_EQ(bf16_to_f32(0x4049), 3.140625f);
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(std::nanf("")))));
}

TEST(Formats, DequantizeBlocks) {
  using namespace formats;
  uint8_t q40[18], q41[20];
  const uint16_t d = f32_to_f16(0.5f), mn = f32_to_f16(-1.0f);
  std::memcpy(q40, &d, 2);
  std::memcpy(q41, &d, 2);
  std::memcpy(q41 + 2, &mn, 2);
  for (int i = 0; i < 16; ++i) q40[2 + i] = q41[4 + i] = uint8_t((i & 15) | ((15 - i) << 4));
  float out[32];
  dequantize_row(DType::q4_0, q40, 32, out);
  EXPECT_FLOAT_EQ(out[0], 0.5f * (0 - 8));
  EXPECT_FLOAT_EQ(out[5], 0.5f * (5 - 8));
  EXPECT_FLOAT_EQ(out[16], 0.5f * (15 - 8));
  EXPECT_FLOAT_EQ(out[31], 0.5f * (0 - 8));
  dequantize_row(DType::q4_1, q41, 32, out);
  EXPECT_FLOAT_EQ(out[3], 0.5f * 3 - 1.0f);
  EXPECT_FLOAT_EQ(out[16 + 3], 0.5f * 12 - 1.0f);
  EXPECT_THROW(dequantize_row(DType::q8_0, q40, 16, out), std::invalid_argument);
}

// Q6_K (llama.cpp's usual output head of its 4- and 5-bit files): a block encoded here from chosen 6-bit values,
// scales and d by the layout (ql low nibbles / high nibbles, qh 2-bit pairs, 16 int8 scales, f16 d) decodes to
// d * scale[v / 16] * (q[v] - 32), whole and as a range starting inside the block (a tp shard). Checked against
// llama-quantize's own output when written: a real Q6_K head decoded within 1.8% rms of its bf16 source.
TEST(Formats, DequantizeQ6KBlocks) {
  uint8_t block[210] = {};
  int q[256];
  int8_t sc[16];
  for (int v = 0; v < 256; ++v) q[v] = (v * 37 + 11) % 64;
  for (int g = 0; g < 16; ++g) sc[g] = int8_t(g % 2 ? -(g + 3) : g + 3);
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const int* qq = q + 128 * h;
      block[64 * h + l] = uint8_t((qq[l] & 15) | ((qq[l + 64] & 15) << 4));
      block[64 * h + 32 + l] = uint8_t((qq[l + 32] & 15) | ((qq[l + 96] & 15) << 4));
      block[128 + 32 * h + l] =
          uint8_t((qq[l] >> 4) | ((qq[l + 32] >> 4) << 2) | ((qq[l + 64] >> 4) << 4) | ((qq[l + 96] >> 4) << 6));
    }
  std::memcpy(block + 192, sc, 16);
  const uint16_t d = formats::f32_to_f16(0.25f);
  std::memcpy(block + 208, &d, 2);
  float out[256];
  formats::dequantize_row(DType::q6_k, block, 256, out);
  for (int v = 0; v < 256; ++v) ASSERT_EQ(out[v], 0.25f * float(sc[v / 16]) * float(q[v] - 32)) << "value " << v;
  float part[60];
  kernels::dequantize_row(DType::q6_k, block, 100, 60, part);
  for (int v = 0; v < 60; ++v) ASSERT_EQ(part[v], out[100 + v]) << "value " << 100 + v;
  EXPECT_EQ(dtype_row_bytes(DType::q6_k, 512), 420u);
  EXPECT_THROW(formats::dequantize_row(DType::q6_k, block, 128, out), std::invalid_argument);  // not whole blocks
}

// A Q6_K tensor whose rows are not whole 256-value blocks is refused naming the tensor and the block size.
TEST(Formats, GgufQ6KRowsMustBeWholeBlocks) {
  test::ScratchDir dir;
  test::TinyGguf g = test::TinyGguf::llama(32, 32, 2, 1, 4);
  g.set_type("blk.0.attn_q.weight", 14);
  const auto path = (dir / "q6k.gguf").string();
  g.write(path);
  try {
    open_model(path);
    FAIL() << "a 32-wide Q6_K tensor was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("blk.0.attn_q.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("256"), std::string::npos) << e.what();
  }
}

TEST(Formats, OpenModelDetection) {
  test::ScratchDir dir;
  dir.write("model.txt", "hello");
  try {
    open_model((dir / "model.txt").string());
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("model.txt"), std::string::npos) << e.what();
  }
  EXPECT_THROW(open_model((dir / "absent.gguf").string()), std::runtime_error);
  EXPECT_THROW(open_model(dir.path().string(), "onnx"), std::invalid_argument);
  // GGUF by magic, whatever the extension.
  test::TinyGguf::llama(32, 32, 2, 1, 4).write((dir / "model.weights").string());
  EXPECT_EQ(open_model((dir / "model.weights").string())->format(), "gguf");
}

TEST(Formats, CanonicalShapes) {
  ModelDesc d = test::dense_desc(64, 96, 2, 4, 2, 16, 10);
  for (LayerSpec& l : d.layers) l.attn.qkv_bias = true;
  EXPECT_EQ(tensor_shape(d, "layers.1.wk"), std::make_pair(int64_t(32), int64_t(64)));
  EXPECT_EQ(tensor_shape(d, "layers.0.bk"), std::make_pair(int64_t(1), int64_t(32)));
  EXPECT_EQ(tensor_shape(d, "layers.1.w_down"), std::make_pair(int64_t(64), int64_t(96)));
  EXPECT_EQ(stored_tensors(d).size(), size_t(3 + 2 * 12));
  EXPECT_THROW(tensor_shape(d, "layers.0.wz"), std::invalid_argument);
}

}  // namespace
}  // namespace hpcinfer
