// int4 weights: the quantizer (Q4_0's rule), the W4A8 matmul of every instruction-set path against float64 and
// bitwise against the portable one, batch invariance, the int4 plugin (Q4_0 and Q4_1 blocks copied without a round trip,
// shards, options, the cuda refusal) and the quality floor against bf16 on real models.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/backend/cpu_backend.hpp"
#include "core/plugin/plugin_registry.hpp"
#include "kernels/cpu/convert.hpp"
#include "kernels/cpu/machine_probe.hpp"
#include "kernels/cpu/matmul.hpp"
#include "kernels/cpu/matmul_int4.hpp"
#include "support/test_support.hpp"

using namespace hpcinfer;
using kernels::int8_detail::QuantizedActs;
using test::randn;

namespace {

// A [rows, cols] int4 matrix in panels, its exact f32 values and each element's scale |d|.
struct Quantized4 {
  std::vector<uint8_t> panels;
  std::vector<float> deq, scale;
  bool has_min = false;
  kernels::Int4Weights weights() const { return {panels.data(), has_min}; }
};
// Packs row-layout rows (`rows` x int4_row_bytes) into panels.
Quantized4 pack4(const std::vector<uint8_t>& row_layout, int64_t rows, int64_t cols, bool has_min) {
  const int64_t pb = kernels::int4_panel_bytes(cols, has_min), panels = kernels::panel_count(rows);
  const int64_t rb = kernels::int4_row_bytes(cols, has_min);
  Quantized4 out{std::vector<uint8_t>(size_t(panels * pb)), std::vector<float>(size_t(rows * cols)),
                 std::vector<float>(size_t(rows * cols)), has_min};
  for (int64_t p = 0; p < panels; ++p) kernels::init_int4_panel(cols, has_min, out.panels.data() + p * pb);
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* panel = out.panels.data() + (r / kernels::kPanelRows) * pb;
    const uint8_t* row = row_layout.data() + r * rb;
    kernels::int4_row_to_panel(row, cols, has_min, r % kernels::kPanelRows, panel);
    kernels::dequantize_int4_panel_row(panel, r % kernels::kPanelRows, cols, has_min, out.deq.data() + r * cols);
    for (int64_t c = 0; c < cols; ++c) {
      uint16_t d16;
      std::memcpy(&d16, row + (c / 32) * kernels::int4_block_bytes(has_min), 2);
      out.scale[size_t(r * cols + c)] = std::fabs(kernels::f16_to_f32(d16));
    }
  }
  return out;
}
Quantized4 quantize4(const std::vector<float>& w, int64_t rows, int64_t cols) {
  const int64_t rb = kernels::int4_row_bytes(cols);
  std::vector<uint8_t> rl(size_t(rows * rb));
  for (int64_t r = 0; r < rows; ++r) kernels::quantize_row_int4(w.data() + r * cols, cols, rl.data() + r * rb);
  return pack4(rl, rows, cols, false);
}
// Random GGUF Q4_0 (has_min false) or Q4_1 rows: every nibble value, d of either sign, m of either sign.
std::vector<uint8_t> random_q4_rows(int64_t rows, int64_t cols, bool has_min, uint32_t seed) {
  std::vector<uint8_t> raw(size_t(rows * kernels::int4_row_bytes(cols, has_min)));
  std::mt19937 g(seed);
  const size_t bb = size_t(kernels::int4_block_bytes(has_min));
  for (size_t b = 0; b < raw.size(); b += bb) {
    const uint16_t d = kernels::f32_to_f16((g() % 2 ? 1.0f : -1.0f) * 0.001f * float(1 + g() % 50));
    std::memcpy(&raw[b], &d, 2);
    if (has_min) {
      const uint16_t m = kernels::f32_to_f16((g() % 2 ? 1.0f : -1.0f) * 0.004f * float(g() % 50));
      std::memcpy(&raw[b + 2], &m, 2);
    }
    for (size_t i = has_min ? 4 : 2; i < bb; ++i) raw[b + i] = uint8_t(g() % 256);
  }
  return raw;
}

using Int4Kernel = void (*)(const QuantizedActs&, const kernels::Int4Weights&, int64_t, float*, int64_t, int64_t, int64_t);
std::vector<std::pair<std::string, Int4Kernel>> runnable_int4_kernels() {
  std::vector<std::pair<std::string, Int4Kernel>> out{{"generic", &kernels::int4_detail::matmul_int4_generic}};
  __builtin_cpu_init();
  if (std::string(kernels::simd_level()) != "generic") out.push_back({"avx2", &kernels::int4_detail::matmul_int4_avx2});
  if (std::string(kernels::simd_level()) == "avx512" && __builtin_cpu_supports("avx512vnni"))
    out.push_back({"vnni", &kernels::int4_detail::matmul_int4_vnni});
  return out;
}

}  // namespace

TEST(QuantizeRowInt4, Q4_0RuleWithinHalfAStepAndTheExtremeExact) {
  for (int64_t cols : {7, 32, 100, 2048}) {
    auto x = randn(size_t(cols), uint32_t(cols), 0.05f);
    x[2] = cols % 2 ? 0.9f : -0.9f;  // an outlier of either sign: coarsens its own block only
    Quantized4 Q = quantize4(x, 1, cols);
    for (int64_t b = 0; b * 32 < cols; ++b) {
      const float d = Q.scale[size_t(b * 32)];
      float amax = 0;
      for (int64_t c = b * 32; c < std::min(cols, b * 32 + 32); ++c) amax = std::max(amax, std::fabs(x[size_t(c)]));
      EXPECT_NEAR(d, amax / 8.0f, amax / 8.0f * 1e-3f) << "the scale is an f16 value of max|x| / 8";
      for (int64_t c = b * 32; c < std::min(cols, b * 32 + 32); ++c) {
        const float xv = x[size_t(c)], q = Q.deq[size_t(c)] / d;
        ASSERT_EQ(q, std::nearbyint(q)) << "an integer multiple of the scale, c " << c;
        ASSERT_LE(std::fabs(q), 8.0f);
        // Half a step (plus the scale's f16 rounding), except on the side where only 7 steps exist: values past
        // 7.5 steps clamp to 7.
        const float bound = std::max(0.5f * d, std::fabs(xv) - 7.0f * d) + std::fabs(xv) * 1e-3f;
        ASSERT_LE(std::fabs(xv - Q.deq[size_t(c)]), bound) << "cols " << cols << " c " << c;
        if (std::fabs(xv) == amax) EXPECT_NEAR(Q.deq[size_t(c)], xv, amax * 1e-3f) << "the extreme is -8 steps";
      }
    }
  }
  std::vector<float> zeros(40, 0.0f);
  Quantized4 Z = quantize4(zeros, 1, 40);
  EXPECT_EQ(Z.deq, zeros) << "an all-zero block has scale 0 and decodes to 0";
}

struct Int4Case {
  int64_t n, rows, cols;
};
class Int4MatmulTest : public ::testing::TestWithParam<Int4Case> {};

// W4A8: against float64 of the same quantized weights and activations (tight), and against the float product of
// the original values within the bound both quantizations allow.
TEST_P(Int4MatmulTest, EveryPathMatchesFloat64AndTheQuantizationBound) {
  const auto [n, rows, cols] = GetParam();
  auto x = randn(size_t(n * cols), 31), w = randn(size_t(rows * cols), 32, 0.1f);
  Quantized4 Q = quantize4(w, rows, cols);
  QuantizedActs A;
  kernels::int8_detail::quantize_acts(x.data(), n, cols, A);
  const int64_t pad = A.blocks * 32;
  for (const auto& [name, kernel] : runnable_int4_kernels()) {
    std::vector<float> y(size_t(n * rows));
    const int64_t cut = rows / 3 / kernels::kPanelRows * kernels::kPanelRows;  // uneven split on a panel
    kernel(A, Q.weights(), cols, y.data(), rows, 0, cut);
    kernel(A, Q.weights(), cols, y.data(), rows, cut, rows);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t r = 0; r < rows; ++r) {
        double exact = 0, truth = 0, mag = 0, bound = 0;
        for (int64_t k = 0; k < cols; ++k) {
          const double xv = x[size_t(i * cols + k)], wv = w[size_t(r * cols + k)];
          const double xd = double(A.q[size_t(i * pad + k)]) * A.scale[size_t(i * A.blocks + k / 32)];
          const double wd = Q.deq[size_t(r * cols + k)], sw = Q.scale[size_t(r * cols + k)];
          exact += xd * wd;
          truth += xv * wv;
          mag += std::fabs(xd * wd);
          bound += std::fabs(xv) * (std::max(0.5 * sw, std::fabs(wv) - 7.0 * sw) + 1e-3 * std::fabs(wv)) +
                   std::fabs(wd) * 0.5 * A.scale[size_t(i * A.blocks + k / 32)];
        }
        const double got = y[size_t(i * rows + r)];
        ASSERT_NEAR(got, exact, 1e-6 * std::sqrt(double(cols)) * mag + 1e-6) << name << " i=" << i << " r=" << r;
        ASSERT_LE(std::fabs(got - truth), bound + 1e-5) << name << " i=" << i << " r=" << r;
      }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, Int4MatmulTest,
                         ::testing::Values(Int4Case{1, 1, 32}, Int4Case{1, 9, 64}, Int4Case{3, 17, 172},
                                           Int4Case{5, 8, 200}, Int4Case{1, 33, 31}, Int4Case{7, 13, 256},
                                           Int4Case{2, 40, 2048}, Int4Case{13, 70, 96}));

// Every int4 kernel (portable, AVX2, VNNI): bitwise the same outputs for every tile shape and both extremes of the
// integer ranges (q = 0 and 15 against activations of +-127: the AVX2 16-bit sums at their largest).
TEST(Int4Matmul, EveryKernelEqualsThePortableOneBitwise) {
  const auto kernels_here = runnable_int4_kernels();
  if (kernels_here.size() < 2) GTEST_SKIP() << "this CPU runs only the portable int4 kernel";
  for (int64_t n : {1, 2, 3, 6, 7, 13}) {
    const int64_t rows = 37, cols = 200;
    auto x = randn(size_t(n * cols), uint32_t(n), 3.0f), w = randn(size_t(rows * cols), 9, 0.1f);
    for (int64_t k = 0; k < 32; ++k) x[size_t(k)] = k % 2 ? 1.0f : -1.0f;  // row 0, block 0: q = +-127
    Quantized4 Q = quantize4(w, rows, cols);
    for (int t = 0; t < 4; ++t)  // row 0, block 0: nibbles 15 where the activation is +127, 0 where it is -127
      for (int b = 0; b < 4; ++b) Q.panels[size_t(2 * kernels::kPanelRows + t * 64 + b)] = (4 * t + b) % 2 ? 0xff : 0x00;
    QuantizedActs A;
    kernels::int8_detail::quantize_acts(x.data(), n, cols, A);
    std::vector<float> want(size_t(n * rows));
    kernels::int4_detail::matmul_int4_generic(A, Q.weights(), cols, want.data(), rows, 0, rows);
    for (const auto& [name, kernel] : kernels_here) {
      std::vector<float> got(want.size());
      kernel(A, Q.weights(), cols, got.data(), rows, 0, rows);
      ASSERT_EQ(got, want) << name << " n " << n;
    }
  }
}

// GGUF Q4_0 and Q4_1 rows moved into panels decode as the GGUF dequantizer (core's, written apart) decodes them, and
// every kernel computes their product exactly as the portable one, close to float64 of the same values.
TEST(Int4Matmul, GgufQ4_0AndQ4_1BlocksDecodeAndMultiplyOnEveryPath) {
  const int64_t rows = 37, cols = 96;
  for (bool has_min : {false, true}) {
    const auto raw = random_q4_rows(rows, cols, has_min, has_min ? 7u : 8u);
    Quantized4 Q = pack4(raw, rows, cols, has_min);
    std::vector<float> want(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
      kernels::dequantize_row(has_min ? DType::q4_1 : DType::q4_0, raw.data() + r * kernels::int4_row_bytes(cols, has_min),
                              0, cols, want.data());
      for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(Q.deq[size_t(r * cols + c)], want[size_t(c)]) << has_min << " " << r << " " << c;
    }
    for (int64_t n : {1, 2, 3, 7}) {
      auto x = randn(size_t(n * cols), uint32_t(n + 50));
      QuantizedActs A;
      kernels::int8_detail::quantize_acts(x.data(), n, cols, A);
      std::vector<float> ref(size_t(n * rows));
      kernels::int4_detail::matmul_int4_generic(A, Q.weights(), cols, ref.data(), rows, 0, rows);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t r = 0; r < rows; ++r) {
          double exact = 0, mag = 0;
          for (int64_t k = 0; k < cols; ++k) {
            const double xd = double(A.q[size_t(i * A.blocks * 32 + k)]) * A.scale[size_t(i * A.blocks + k / 32)];
            exact += xd * Q.deq[size_t(r * cols + k)];
            mag += std::fabs(xd * Q.deq[size_t(r * cols + k)]);
          }
          ASSERT_NEAR(ref[size_t(i * rows + r)], exact, 1e-5 * mag + 1e-6) << "has_min " << has_min << " i " << i << " r " << r;
        }
      for (const auto& [name, kernel] : runnable_int4_kernels()) {
        std::vector<float> got(ref.size());
        kernel(A, Q.weights(), cols, got.data(), rows, 0, rows);
        ASSERT_EQ(got, ref) << name << " has_min " << has_min << " n " << n;
      }
    }
  }
}

// A token's outputs are bitwise the same alone or inside any batch, on every path.
TEST(Int4Matmul, BatchInvariantOnEveryPath) {
  const int64_t n = 9, rows = 21, cols = 200;
  auto x = randn(size_t(n * cols), 21), w = randn(size_t(rows * cols), 22, 0.1f);
  Quantized4 Q = quantize4(w, rows, cols);
  for (const auto& [name, kernel] : runnable_int4_kernels()) {
    auto run = [&, k = kernel](const float* xs, int64_t m, float* y) {
      QuantizedActs A;
      kernels::int8_detail::quantize_acts(xs, m, cols, A);
      k(A, Q.weights(), cols, y, rows, 0, rows);
    };
    std::vector<float> all(size_t(n * rows)), one(static_cast<size_t>(rows));
    run(x.data(), n, all.data());
    for (int64_t i = 0; i < n; ++i) {
      run(x.data() + i * cols, 1, one.data());
      for (int64_t r = 0; r < rows; ++r) ASSERT_EQ(one[size_t(r)], all[size_t(i * rows + r)]) << name << " token " << i;
    }
  }
}

// The public entry point (what the plugin calls) dispatches to a path that equals the portable kernel.
TEST(Int4Matmul, DispatchedEntryEqualsThePortableKernel) {
  const int64_t n = 5, rows = 48, cols = 96;
  auto x = randn(size_t(n * cols), 41), w = randn(size_t(rows * cols), 42, 0.1f);
  Quantized4 Q = quantize4(w, rows, cols);
  QuantizedActs A;
  kernels::int8_detail::quantize_acts(x.data(), n, cols, A);
  std::vector<float> want(size_t(n * rows)), got(want.size());
  kernels::int4_detail::matmul_int4_generic(A, Q.weights(), cols, want.data(), rows, 0, rows);
  kernels::matmul_int4(x.data(), n, Q.weights(), cols, got.data(), rows, 0, rows);
  EXPECT_EQ(got, want) << "path " << kernels::simd_level();
}

class Int4PluginTest : public ::testing::Test {
 protected:
  PluginRegistry registry{{test::plugin_dir()}};
  std::unique_ptr<WeightFormat> fmt = registry.create_weights("int4");
  CpuBackend cpu{1};
};

TEST_F(Int4PluginTest, Q4_0BlocksAreCopiedWithoutARoundTrip) {
  // A [3 x 96] Q4_0 tensor with random blocks (every nibble value, both signs of d).
  const int64_t rows = 3, cols = 96;
  const auto raw = random_q4_rows(rows, cols, false, 5);
  TensorView v{"blk.q4", DType::q4_0, raw.data(), rows, cols};
  auto packed = fmt->pack(v, {0, rows}, {32, 96}, cpu);  // a column shard on a block boundary
  EXPECT_EQ(packed->bytes(), size_t(kernels::int4_panel_bytes(64)));  // one panel of 16 rows, two blocks
  std::vector<float> got(64), want(64);
  for (int64_t r = 0; r < rows; ++r) {
    packed->dequantize_row(r, got.data());
    kernels::dequantize_row(DType::q4_0, v.row_ptr(r), 32, 64, want.data());
    for (int c = 0; c < 64; ++c) ASSERT_EQ(got[size_t(c)], want[size_t(c)]) << "bitwise, row " << r << " col " << c;
  }
  // A shard inside a block cannot be copied: dequantized and quantized again, within a new step of the source.
  auto inner = fmt->pack(v, {0, rows}, {16, 96}, cpu);
  std::vector<float> g80(80), w80(80);
  for (int64_t r = 0; r < rows; ++r) {
    inner->dequantize_row(r, g80.data());
    kernels::dequantize_row(DType::q4_0, v.row_ptr(r), 16, 80, w80.data());
    for (int64_t b = 0; b < 3; ++b) {
      float amax = 0;
      for (int64_t c = b * 32; c < std::min<int64_t>(80, b * 32 + 32); ++c) amax = std::max(amax, std::fabs(w80[size_t(c)]));
      for (int64_t c = b * 32; c < std::min<int64_t>(80, b * 32 + 32); ++c)
        ASSERT_LE(std::fabs(g80[size_t(c)] - w80[size_t(c)]), amax / 8.0f * 1.01f) << "row " << r << " col " << c;
    }
  }
}

TEST_F(Int4PluginTest, Q4_1BlocksKeepTheirMinimums) {
  const int64_t rows = 5, cols = 64;
  const auto raw = random_q4_rows(rows, cols, true, 11);
  TensorView v{"blk.q41", DType::q4_1, raw.data(), rows, cols};
  auto packed = fmt->pack(v, {0, rows}, {0, cols}, cpu);
  EXPECT_EQ(packed->bytes(), size_t(kernels::int4_panel_bytes(cols, true)));  // 5 bits per weight
  std::vector<float> got(static_cast<size_t>(cols)), want(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    packed->dequantize_row(r, got.data());
    kernels::dequantize_row(DType::q4_1, v.row_ptr(r), 0, cols, want.data());
    ASSERT_EQ(got, want) << "bitwise, row " << r;
  }
  // A shard inside a block: symmetric blocks of its own, within a step of the source.
  auto inner = fmt->pack(v, {0, rows}, {8, 64}, cpu);
  EXPECT_EQ(inner->bytes(), size_t(kernels::int4_panel_bytes(56, false)));
  std::vector<float> g56(56), w56(56);
  for (int64_t r = 0; r < rows; ++r) {
    inner->dequantize_row(r, g56.data());
    kernels::dequantize_row(DType::q4_1, v.row_ptr(r), 8, 56, w56.data());
    for (int64_t c = 0; c < 56; ++c) {
      float amax = 0;
      for (int64_t k = c / 32 * 32; k < std::min<int64_t>(56, c / 32 * 32 + 32); ++k) amax = std::max(amax, std::fabs(w56[size_t(k)]));
      ASSERT_LE(std::fabs(g56[size_t(c)] - w56[size_t(c)]), amax / 8.0f * 1.01f) << "row " << r << " col " << c;
    }
  }
}

TEST_F(Int4PluginTest, ShardsTakeBlocksFromTheirFirstColumnAndOptionsAndCudaAreRefused) {
  const int64_t rows = 20, cols = 96;
  auto w = randn(size_t(rows * cols), 17, 0.2f);
  TensorView v{"layers.0.w_down", DType::f32, w.data(), rows, cols};
  // On block boundaries: the shard's values are the whole matrix's, bitwise; rows split too.
  auto whole = fmt->pack(v, {0, rows}, {0, cols}, cpu), right = fmt->pack(v, {3, rows}, {64, 96}, cpu);
  EXPECT_EQ(right->rows(), rows - 3);
  std::vector<float> a(static_cast<size_t>(cols)), b(32);
  for (int64_t r = 3; r < rows; ++r) {
    whole->dequantize_row(r, a.data());
    right->dequantize_row(r - 3, b.data());
    for (int64_t c = 0; c < 32; ++c) ASSERT_EQ(b[size_t(c)], a[size_t(64 + c)]) << "row " << r << " col " << c;
  }
  // Inside a block: blocks of its own, quantized as a matrix of those columns would be.
  auto mid = fmt->pack(v, {0, rows}, {48, 96}, cpu);
  std::vector<float> slice(size_t(rows * 48));
  for (int64_t r = 0; r < rows; ++r) std::copy(w.begin() + r * cols + 48, w.begin() + r * cols + 96, slice.begin() + r * 48);
  TensorView sv{"slice", DType::f32, slice.data(), rows, 48};
  auto own = fmt->pack(sv, {0, rows}, {0, 48}, cpu);
  std::vector<float> m(48), o(48);
  for (int64_t r = 0; r < rows; ++r) {
    mid->dequantize_row(r, m.data());
    own->dequantize_row(r, o.data());
    ASSERT_EQ(m, o) << "row " << r;
  }
  // The packed matmul equals the dequantized weights' product within the activations' quantization.
  auto x = randn(size_t(2 * cols), 3);
  std::vector<float> y(size_t(2 * rows));
  whole->matmul(x.data(), 2, y.data());
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t r = 0; r < rows; ++r) {
      whole->dequantize_row(r, a.data());
      double ref = 0, mag = 0;
      for (int64_t c = 0; c < cols; ++c) ref += double(a[size_t(c)]) * x[size_t(i * cols + c)], mag += std::fabs(a[size_t(c)]);
      ASSERT_NEAR(y[size_t(i * rows + r)], ref, mag * 3.0 / 127.0) << "i " << i << " r " << r;
    }
  EXPECT_EQ(fmt->bytes(rows, cols), whole->bytes());
  EXPECT_THROW(fmt->set_option("group_size", "64"), std::invalid_argument);
  EXPECT_FALSE(fmt->supports_backend("cuda"));
  EXPECT_TRUE(fmt->supports_backend("cpu"));
}

// Quality floor of int4 against bf16 through `hpcinfer agree` (20 prompts, greedy). Measured when written
// (AVX-512 VNNI machine): stories260K 0.82 agreement, mean KL 0.11 (64 tokens); SmolLM2-135M-Instruct from its
// Q4_1 file 0.76, mean KL 0.09 (32 tokens; its Q4_1 blocks are copied, its Q8_0 embedding, tied to the head, is
// requantized to 4 bits: most of the loss; 0.64 / 0.39 when the Q4_1 blocks were requantized too). 4 bits cost these
// tiny models that much (int8 on the same runs: 0.986 / 8e-4 and 0.958 / 4.6e-3). The kernels' arithmetic is pinned by the tests above;
// these floors catch what reaches the model (which tensors, which shard, the source's blocks) and leave room for
// rounding changes.
namespace {
nlohmann::json agree_int4(const std::string& model_args, int tokens) {
  auto r = test::run_command(test::bin() + " agree " + model_args + " --weights bf16 --weights-b int4 -n " +
                             std::to_string(tokens) + " --json --prompts " +
                             test::shell_quote(std::string(HPCINFER_SOURCE_DIR) + "/configs/prompts/quality20.jsonl") +
                             " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return nlohmann::json::parse(r.output);
}
}  // namespace

TEST(Int4Quality, Stories260KFollowsBf16) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  const auto d = test::shared_data() / "models/stories260K";
  auto j = agree_int4("--model " + (d / "stories260K.bin").string() + " --tokenizer " + (d / "tok512.bin").string(), 64);
  EXPECT_EQ(j["prompts"], 20);
  EXPECT_GE(j["agreement"].get<double>(), 0.7) << j.dump();
  EXPECT_LE(j["mean_kl"].get<double>(), 0.25) << j.dump();
}

TEST(Int4Quality, SmolLM2FollowsBf16) {
  const auto model = std::filesystem::path(HPCINFER_SOURCE_DIR) / "models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(model)) GTEST_SKIP() << "no " << model.string() << " (bash scripts/fetch_smollm2.sh fetches it)";
  auto j = agree_int4("--model " + model.string(), 16);
  EXPECT_GE(j["agreement"].get<double>(), 0.6) << j.dump();
  EXPECT_LE(j["mean_kl"].get<double>(), 0.25) << j.dump();
}
