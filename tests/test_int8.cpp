// int8 weights: the quantizer, the int8 matmul of every instruction-set path against float64, batch invariance of
// every matmul path, and the int8 plugin (Q8_0 loaded without a round trip, shard and option errors).
#include <gtest/gtest.h>

#include <immintrin.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/backend/cpu_backend.hpp"
#include "core/plugin/plugin_registry.hpp"
#include "kernels/cpu/convert.hpp"
#include "kernels/cpu/machine_probe.hpp"
#include "kernels/cpu/matmul.hpp"
#include "kernels/cpu/matmul_int8.hpp"
#include "kernels/cpu/matmul_isa.hpp"
#include "support/test_support.hpp"

using namespace hpcinfer;

namespace {

using test::randn;

struct Isa {
  std::string name;
  kernels::MatmulKernels k;
};
// Every kernel table this CPU can run (the dispatcher picks only the widest; the others must be right too).
std::vector<Isa> runnable_isas() {
  std::vector<Isa> out{{"generic", kernels::matmul_kernels_generic()}};
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
    out.push_back({"avx2", kernels::matmul_kernels_avx2()});
  if (std::string(kernels::simd_level()) == "avx512") out.push_back({"avx512", kernels::matmul_kernels_avx512()});
  return out;
}

// A quantized [rows, cols] matrix in the kernels' panel layout, its exact f32 value, and each element's scale.
struct Quantized {
  std::vector<uint8_t> panels;
  std::vector<float> channel, deq, scale;
  int64_t group;
  kernels::Int8Weights weights() const { return {panels.data(), channel.data(), group}; }
};
Quantized quantize(const std::vector<float>& w, int64_t rows, int64_t cols, int64_t group) {
  const int64_t rb = kernels::int8_row_bytes(cols, group), pb = kernels::int8_panel_bytes(cols, group);
  const int64_t panels = kernels::panel_count(rows);
  Quantized out{std::vector<uint8_t>(static_cast<size_t>(panels * pb)),
                std::vector<float>(static_cast<size_t>(panels * kernels::kPanelRows)), std::vector<float>(w.size()),
                std::vector<float>(w.size()), group};
  for (int64_t p = 0; p < panels; ++p) kernels::init_int8_panel(cols, group, out.panels.data() + p * pb);
  std::vector<uint8_t> row(static_cast<size_t>(rb));
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* panel = out.panels.data() + (r / kernels::kPanelRows) * pb;
    kernels::quantize_row_int8(w.data() + r * cols, cols, group, row.data(), &out.channel[size_t(r)]);
    kernels::int8_row_to_panel(row.data(), cols, group, r % kernels::kPanelRows, panel);
    kernels::dequantize_int8_panel_row(panel, r % kernels::kPanelRows, cols, group, out.channel[size_t(r)],
                                       out.deq.data() + r * cols);
    for (int64_t c = 0; c < cols; ++c) {
      float d = out.channel[size_t(r)];
      if (group > 0) std::memcpy(&d, row.data() + (c / group) * (4 + group), 4);
      out.scale[size_t(r * cols + c)] = d;
    }
  }
  return out;
}

}  // namespace

TEST(QuantizeRowInt8, RoundsToNearestStepWithinHalfAScale) {
  for (int64_t group : {0, 32, 64}) {
    for (int64_t cols : {16, 172, 200, 2048}) {
      auto x = randn(static_cast<size_t>(cols), uint32_t(cols + group), 0.05f);
      x[3] = 0.9f;  // an outlier: coarsens its own group only
      Quantized Q = quantize(x, 1, cols, group);
      const int64_t g = group > 0 ? group : cols;
      for (int64_t b = 0; b * g < cols; ++b) {
        float amax = 0, qmax = 0;
        const float d = Q.scale[size_t(b * g)];
        for (int64_t c = b * g; c < std::min(cols, b * g + g); ++c) {
          amax = std::max(amax, std::fabs(x[size_t(c)]));
          const float q = Q.deq[size_t(c)] / d;
          qmax = std::max(qmax, std::fabs(q));
          ASSERT_EQ(q, std::nearbyint(q)) << "an integer multiple of the scale";
          ASSERT_LE(std::fabs(q), 127.0f);
          // Error at most half a step, plus the f16 rounding of the scale (relative 2^-11 of the value).
          ASSERT_LE(std::fabs(x[size_t(c)] - Q.deq[size_t(c)]), 0.5f * d + std::fabs(x[size_t(c)]) * 1e-3f)
              << "group " << group << " cols " << cols << " c " << c;
        }
        EXPECT_NEAR(d, amax / 127.0f, amax / 127.0f * 1e-3f);  // the scale is an f16 value of max|x|/127
        EXPECT_GE(qmax, 126.0f);                                 // the largest value uses the full range
      }
    }
  }
}

// The int8 kernels this CPU can run: the portable one always, AVX2 and VNNI where present.
using Int8Kernel = void (*)(const kernels::int8_detail::QuantizedActs&, const kernels::Int8Weights&, int64_t, float*,
                            int64_t, int64_t, int64_t);
std::vector<std::pair<std::string, Int8Kernel>> runnable_int8_kernels() {
  std::vector<std::pair<std::string, Int8Kernel>> out{{"generic", &kernels::int8_detail::matmul_int8_generic}};
  __builtin_cpu_init();
  if (std::string(kernels::simd_level()) != "generic") out.push_back({"avx2", &kernels::int8_detail::matmul_int8_avx2});
  if (std::string(kernels::simd_level()) == "avx512" && __builtin_cpu_supports("avx512vnni"))
    out.push_back({"vnni", &kernels::int8_detail::matmul_int8_vnni});
  return out;
}

struct Int8Case {
  int64_t n, rows, cols, group;
};
class Int8MatmulTest : public ::testing::TestWithParam<Int8Case> {};

// W8A8: against float64 of the same quantized weights and activations (tight), and against the float product of
// the original values within the bound both quantizations allow.
TEST_P(Int8MatmulTest, EveryPathMatchesFloat64AndTheQuantizationBound) {
  const auto [n, rows, cols, group] = GetParam();
  auto x = randn(static_cast<size_t>(n * cols), 11), w = randn(static_cast<size_t>(rows * cols), 12, 0.1f);
  Quantized Q = quantize(w, rows, cols, group);
  kernels::int8_detail::QuantizedActs A;
  kernels::int8_detail::quantize_acts(x.data(), n, cols, A);
  const int64_t pad = A.blocks * 32;
  for (const auto& [name, kernel] : runnable_int8_kernels()) {
    std::vector<float> y(static_cast<size_t>(n * rows));
    const int64_t cut = rows / 3 / kernels::kPanelRows * kernels::kPanelRows;  // uneven split on a panel, as threads do
    kernel(A, Q.weights(), cols, y.data(), rows, 0, cut);
    kernel(A, Q.weights(), cols, y.data(), rows, cut, rows);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t r = 0; r < rows; ++r) {
        double exact = 0, truth = 0, mag = 0, bound = 0;
        for (int64_t k = 0; k < cols; ++k) {
          const double xv = x[size_t(i * cols + k)];
          const double xd = double(A.q[size_t(i * pad + k)]) * A.scale[size_t(i * A.blocks + k / 32)];
          const double wd = Q.deq[size_t(r * cols + k)];
          exact += xd * wd;
          truth += xv * w[size_t(r * cols + k)];
          mag += std::fabs(xd * wd);
          // |w - w^| <= s_w/2 (+ the f16 rounding of s_w), |x - x^| <= s_x/2.
          bound += std::fabs(xv) * (0.5 * Q.scale[size_t(r * cols + k)] + 1e-3 * std::fabs(w[size_t(r * cols + k)])) +
                   std::fabs(wd) * 0.5 * A.scale[size_t(i * A.blocks + k / 32)];
        }
        const double got = y[size_t(i * rows + r)];
        ASSERT_NEAR(got, exact, 1e-6 * std::sqrt(double(cols)) * mag + 1e-6) << name << " i=" << i << " r=" << r;
        ASSERT_LE(std::fabs(got - truth), bound + 1e-5) << name << " i=" << i << " r=" << r;
      }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, Int8MatmulTest,
                         ::testing::Values(Int8Case{1, 1, 32, 32}, Int8Case{1, 9, 64, 32}, Int8Case{3, 17, 172, 32},
                                           Int8Case{5, 8, 200, 64}, Int8Case{4, 12, 96, 0}, Int8Case{1, 33, 31, 0},
                                           Int8Case{9, 13, 256, 128}, Int8Case{2, 40, 2048, 32},
                                           Int8Case{11, 70, 96, 32}, Int8Case{1, 50, 64, 0}));

// Every int8 kernel (portable, AVX2, VNNI): bitwise the same outputs (same integer dots, same f32 steps), every tile
// shape, including q = -128 (Q8_0 files may hold it; the quantizer never writes it).
TEST(Int8Matmul, EveryKernelEqualsThePortableOneBitwise) {
  const auto kernels_here = runnable_int8_kernels();
  if (kernels_here.size() < 2) GTEST_SKIP() << "this CPU runs only the portable int8 kernel";
  for (int64_t group : {0, 32, 64})
    for (int64_t n : {1, 3, 8, 13}) {
      const int64_t rows = 37, cols = 200;
      auto x = randn(static_cast<size_t>(n * cols), uint32_t(n), 3.0f), w = randn(static_cast<size_t>(rows * cols), 9, 0.1f);
      Quantized Q = quantize(w, rows, cols, group);
      Q.panels[64 + 5] = 0;  // a weight of q = -128 (u8 0) in the first block of the first panel
      kernels::int8_detail::QuantizedActs A;
      kernels::int8_detail::quantize_acts(x.data(), n, cols, A);
      std::vector<float> want(static_cast<size_t>(n * rows));
      kernels::int8_detail::matmul_int8_generic(A, Q.weights(), cols, want.data(), rows, 0, rows);
      for (const auto& [name, kernel] : kernels_here) {
        std::vector<float> got(want.size());
        kernel(A, Q.weights(), cols, got.data(), rows, 0, rows);
        ASSERT_EQ(got, want) << name << " group " << group << " n " << n;
      }
    }
}

// Every path, every weight type: a token's outputs are bitwise the same alone or inside any batch.
TEST(MatmulBatchInvariance, EveryPathAndWeightTypeGivesBitwiseEqualRows) {
  const int64_t n = 9, rows = 21, cols = 200;
  auto x = randn(static_cast<size_t>(n * cols), 21), w = randn(static_cast<size_t>(rows * cols), 22, 0.1f);
  std::vector<uint16_t> wb(static_cast<size_t>(kernels::panel_count(rows) * kernels::kPanelRows * cols), 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) wb[kernels::bf16_panel_index(r, c, cols)] = kernels::f32_to_bf16(w[size_t(r * cols + c)]);
  Quantized Q = quantize(w, rows, cols, 32), C = quantize(w, rows, cols, 0);
  using Fn = std::function<void(const float*, int64_t, float*)>;
  std::vector<std::pair<std::string, Fn>> kinds;
  for (const Isa& isa : runnable_isas()) {
    kinds.push_back({isa.name + " f32", [&, isa](const float* xs, int64_t m, float* y) { isa.k.f32(xs, m, w.data(), cols, y, rows, 0, rows); }});
    kinds.push_back({isa.name + " bf16", [&, isa](const float* xs, int64_t m, float* y) { isa.k.bf16(xs, m, wb.data(), cols, y, rows, 0, rows); }});
  }
  for (const auto& [name, kernel] : runnable_int8_kernels())
    for (const Quantized* q : {&Q, &C})
      kinds.push_back({name + " int8/" + std::to_string(q->group), [&, kernel, q](const float* xs, int64_t m, float* y) {
                         kernels::int8_detail::QuantizedActs A;
                         kernels::int8_detail::quantize_acts(xs, m, cols, A);
                         kernel(A, q->weights(), cols, y, rows, 0, rows);
                       }});
  for (const auto& [kind, run] : kinds) {
    std::vector<float> all(static_cast<size_t>(n * rows)), one(static_cast<size_t>(rows));
    run(x.data(), n, all.data());
    for (int64_t i = 0; i < n; ++i) {
      run(x.data() + i * cols, 1, one.data());
      for (int64_t r = 0; r < rows; ++r) ASSERT_EQ(one[size_t(r)], all[size_t(i * rows + r)]) << kind << " token " << i;
    }
  }
}

// The vectorized activation quantizers (AVX-512, AVX2) write the same bytes and scales as the portable one.
TEST(QuantizeActs, VectorQuantizersEqualThePortableOne) {
  __builtin_cpu_init();
  using Quantizer = void (*)(const float*, int64_t, int64_t, kernels::int8_detail::QuantizedActs&);
  std::vector<std::pair<std::string, Quantizer>> quantizers;
  if (std::string(kernels::simd_level()) != "generic") quantizers.push_back({"avx2", &kernels::int8_detail::quantize_acts_avx2});
  if (std::string(kernels::simd_level()) == "avx512" && __builtin_cpu_supports("avx512vnni"))
    quantizers.push_back({"vnni", &kernels::int8_detail::quantize_acts_vnni});
  if (quantizers.empty()) GTEST_SKIP() << "this CPU has neither AVX2 nor AVX-512: only the portable quantizer runs here";
  for (const auto& [name, quantize] : quantizers) {
    for (int64_t cols : {1, 7, 31, 32, 33, 200, 2048}) {
      auto x = randn(static_cast<size_t>(3 * cols), uint32_t(cols), 2.0f);
      x[0] = 0.0f;
      kernels::int8_detail::QuantizedActs a, b;
      kernels::int8_detail::quantize_acts(x.data(), 3, cols, a);
      quantize(x.data(), 3, cols, b);
      EXPECT_EQ(a.q, b.q) << name << " " << cols;
      EXPECT_EQ(a.scale, b.scale) << name << " " << cols;
      EXPECT_EQ(a.correction, b.correction) << name << " " << cols;
    }
    std::vector<float> zeros(64, 0.0f);  // an all-zero block: scale 0, q 0
    kernels::int8_detail::QuantizedActs z;
    quantize(zeros.data(), 1, 64, z);
    EXPECT_EQ(z.scale, std::vector<float>(2, 0.0f)) << name;
    EXPECT_EQ(z.q, std::vector<int8_t>(64, 0)) << name;
  }
}

// Loading int8 weights: the vectorized panel quantizers (AVX-512, AVX2) write the bytes and scales the row-by-row
// path writes, for ragged groups and panels, zero groups, and scales from f16 subnormals to f16's largest.
TEST(QuantizeRowsToPanel, VectorQuantizersEqualTheRowByRowPath) {
  using Quantizer = void (*)(const float*, int64_t, int64_t, int64_t, int64_t, uint8_t*);
  std::vector<std::pair<std::string, Quantizer>> quantizers;
  if (std::string(kernels::simd_level()) != "generic") quantizers.push_back({"avx2", &kernels::int8_detail::quantize_rows_to_panel_avx2});
  if (std::string(kernels::simd_level()) == "avx512") quantizers.push_back({"avx512", &kernels::int8_detail::quantize_rows_to_panel_avx512});
  if (quantizers.empty()) GTEST_SKIP() << "this CPU has neither AVX2 nor AVX-512: only the row-by-row quantizer runs here";
  for (int64_t group : {32, 64, 128})
    for (int64_t cols : {1, 31, 32, 45, 200, 2048})
      for (int64_t n : {1, 7, 16}) {
        const int64_t ld = cols + 3;
        auto x = randn(static_cast<size_t>(n * ld), uint32_t(cols * 131 + n), 0.05f);
        for (int64_t c = 0; c < std::min<int64_t>(cols, group); ++c) x[size_t(c)] = 0.0f;  // row 0's first group: 0
        if (n > 1) x[size_t(ld)] = 65504.0f * 127.0f;                                        // row 1: f16's largest scale
        if (n > 2) x[size_t(2 * ld)] = 3e-6f;                                                 // row 2: an f16 subnormal scale
        if (n > 3) x[size_t(3 * ld)] = -1e-9f, x[size_t(3 * ld + 1)] = 1e-30f;                // row 3: scale underflows to 0
        std::vector<uint8_t> want(size_t(kernels::int8_panel_bytes(cols, group))), row(size_t(kernels::int8_row_bytes(cols, group)));
        kernels::init_int8_panel(cols, group, want.data());
        for (int64_t j = 0; j < n; ++j) {
          kernels::quantize_row_int8(x.data() + j * ld, cols, group, row.data(), nullptr);
          kernels::int8_row_to_panel(row.data(), cols, group, j, want.data());
        }
        for (const auto& [name, quantize] : quantizers) {
          std::vector<uint8_t> got(want.size());
          kernels::init_int8_panel(cols, group, got.data());
          quantize(x.data(), ld, n, cols, group, got.data());
          ASSERT_EQ(got, want) << name << " group " << group << " cols " << cols << " rows " << n;
        }
      }
}

// The f16 scale the vector quantizers get from the F16C conversion is f32_to_f16's, over f32 values from 0 to 2^17.
__attribute__((target("f16c"))) uint16_t f16c_f32_to_f16(float f) {
  return uint16_t(_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT), 0));
}
TEST(QuantizeRowsToPanel, F16ConversionMatchesTheSoftwareOne) {
  if (std::string(kernels::simd_level()) == "generic") GTEST_SKIP() << "no F16C path on this CPU (or HPCINFER_SIMD caps it)";
  for (uint32_t u = 0; u < 0x48000000u; u += 997) {  // every 997th bit pattern: subnormals, normals, overflow to inf
    float f;
    std::memcpy(&f, &u, 4);
    const uint16_t hw = f16c_f32_to_f16(f);
    ASSERT_EQ(hw, kernels::f32_to_f16(f)) << "bits 0x" << std::hex << u;
  }
}

class Int8PluginTest : public ::testing::Test {
 protected:
  PluginRegistry registry{{test::plugin_dir()}};
  std::unique_ptr<WeightFormat> fmt = registry.create_weights("int8");
  CpuBackend cpu{1};
};

TEST_F(Int8PluginTest, Q8_0BlocksAreCopiedWithoutARoundTrip) {
  // A [3 x 64] Q8_0 tensor: per block f16 d then 32 int8 (-128 included, which the quantizer never writes).
  const int64_t rows = 3, cols = 64;
  std::vector<uint8_t> raw(dtype_row_bytes(DType::q8_0, cols) * rows);
  std::mt19937 g(5);
  for (size_t b = 0; b < raw.size(); b += 34) {
    const uint16_t d = kernels::f32_to_f16(0.001f * float(1 + g() % 50));
    std::memcpy(&raw[b], &d, 2);
    for (int i = 0; i < 32; ++i) raw[b + 2 + size_t(i)] = uint8_t(g() % 256);
  }
  TensorView v{"blk.q8", DType::q8_0, raw.data(), rows, cols};
  auto packed = fmt->pack(v, {0, rows}, {32, 64}, cpu);  // a column shard on a block boundary
  EXPECT_EQ(packed->bytes(), size_t(kernels::kPanelRows * (4 + 32)));  // one panel of 16 rows, 13 of them padding
  std::vector<float> got(32), want(32);
  for (int64_t r = 0; r < rows; ++r) {
    packed->dequantize_row(r, got.data());
    kernels::dequantize_row(DType::q8_0, v.row_ptr(r), 32, 32, want.data());
    for (int c = 0; c < 32; ++c) ASSERT_EQ(got[size_t(c)], want[size_t(c)]) << "bitwise, row " << r << " col " << c;
  }
  // A shard inside a block cannot be copied: dequantized and quantized again, within half a new step of the source.
  auto inner = fmt->pack(v, {0, rows}, {16, 64}, cpu);
  std::vector<float> g48(48), w48(48);
  for (int64_t r = 0; r < rows; ++r) {
    inner->dequantize_row(r, g48.data());
    kernels::dequantize_row(DType::q8_0, v.row_ptr(r), 16, 48, w48.data());
    for (int64_t b = 0; b < 2; ++b) {
      float amax = 0;
      for (int64_t c = b * 32; c < std::min<int64_t>(48, b * 32 + 32); ++c) amax = std::max(amax, std::fabs(w48[size_t(c)]));
      for (int64_t c = b * 32; c < std::min<int64_t>(48, b * 32 + 32); ++c)
        ASSERT_LE(std::fabs(g48[size_t(c)] - w48[size_t(c)]), 0.5f * amax / 127.0f * 1.01f) << "row " << r << " col " << c;
    }
  }
}

TEST_F(Int8PluginTest, ShardsTakeGroupsFromTheirFirstColumnAndBadOptionsAreRefused) {
  const int64_t rows = 4, cols = 96;
  auto w = randn(static_cast<size_t>(rows * cols), 17, 0.2f);
  TensorView v{"layers.0.w_down", DType::f32, w.data(), rows, cols};
  // On group boundaries: the shard's values are the whole matrix's, bitwise.
  auto whole = fmt->pack(v, {0, rows}, {0, cols}, cpu), right = fmt->pack(v, {0, rows}, {64, 96}, cpu);
  std::vector<float> a(static_cast<size_t>(cols)), b(32);
  for (int64_t r = 0; r < rows; ++r) {
    whole->dequantize_row(r, a.data());
    right->dequantize_row(r, b.data());
    for (int64_t c = 0; c < 32; ++c) ASSERT_EQ(b[size_t(c)], a[size_t(64 + c)]) << "row " << r << " col " << c;
  }
  // Inside a group (stories260K's 172-wide down projection split in two): groups of its own, quantized as a matrix
  // of those columns would be.
  auto mid = fmt->pack(v, {0, rows}, {48, 96}, cpu);
  std::vector<float> slice(static_cast<size_t>(rows * 48));
  for (int64_t r = 0; r < rows; ++r)
    std::copy(w.begin() + r * cols + 48, w.begin() + r * cols + 96, slice.begin() + r * 48);
  TensorView sv{"slice", DType::f32, slice.data(), rows, 48};
  auto own = fmt->pack(sv, {0, rows}, {0, 48}, cpu);
  std::vector<float> m(48), o(48);
  for (int64_t r = 0; r < rows; ++r) {
    mid->dequantize_row(r, m.data());
    own->dequantize_row(r, o.data());
    ASSERT_EQ(m, o) << "row " << r;
  }
  EXPECT_THROW(fmt->set_option("group_size", "24"), std::invalid_argument);
  EXPECT_THROW(fmt->set_option("group_size", "16"), std::invalid_argument);  // below the activation block of 32
  EXPECT_THROW(fmt->set_option("group_size", "abc"), std::invalid_argument);
  EXPECT_THROW(fmt->set_option("bits", "4"), std::invalid_argument);
}

// Quality floor of int8 (group 32) against bf16 through `hpcinfer agree`: 20 prompts x 64 greedy tokens.
// Measured when written: stories260K agreement 0.991, mean KL 4.2e-4; llama-2-tiny-random 0.977 (its near-uniform
// random distributions, mean KL 5e-8, make near-ties common). The floors leave room for kernel changes, not for bugs:
// a wrong scale or a shifted group gives agreement near 0 and KL above 1.
namespace {
nlohmann::json agree(const std::string& model_args) {
  auto r = test::run_command(test::bin() + " agree " + model_args + " --weights bf16 --weights-b int8 -n 64 --json --prompts " +
                             test::shell_quote(std::string(HPCINFER_SOURCE_DIR) + "/configs/prompts/quality20.jsonl") +
                             " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return nlohmann::json::parse(r.output);
}
}  // namespace

TEST(Int8Quality, Stories260KFollowsBf16) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  const auto d = test::shared_data() / "models/stories260K";
  auto j = agree("--model " + (d / "stories260K.bin").string() + " --tokenizer " + (d / "tok512.bin").string());
  EXPECT_EQ(j["prompts"], 20);
  EXPECT_GE(j["agreement"].get<double>(), 0.95) << j.dump();
  EXPECT_LE(j["mean_kl"].get<double>(), 5e-3) << j.dump();
}

TEST(Int8Quality, TinyRandomLlamaFollowsBf16) {
  HPCINFER_REQUIRE_DATA("models/llama-2-tiny-random-gguf/llama-2-tiny-random.gguf");
  auto j = agree("--model " + (test::shared_data() / "models/llama-2-tiny-random-gguf/llama-2-tiny-random.gguf").string());
  EXPECT_GE(j["agreement"].get<double>(), 0.9) << j.dump();
  EXPECT_LE(j["mean_kl"].get<double>(), 1e-5) << j.dump();
}

// bf16dot (bf16 activations) against bf16 (f32 activations): measured when written 0.9992 agreement, mean KL 1.7e-5.
TEST(Bf16DotQuality, Stories260KFollowsBf16) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  if (!kernels::bf16dot_supported()) GTEST_SKIP() << "this CPU has no AVX512-BF16: the bf16dot plugin refuses to run";
  const auto d = test::shared_data() / "models/stories260K";
  auto r = test::run_command(test::bin() + " agree --model " + (d / "stories260K.bin").string() + " --tokenizer " +
                             (d / "tok512.bin").string() + " --weights bf16 --weights-b bf16dot -n 64 --json --prompts " +
                             test::shell_quote(std::string(HPCINFER_SOURCE_DIR) + "/configs/prompts/quality20.jsonl") + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_GE(j["agreement"].get<double>(), 0.98) << j.dump();
  EXPECT_LE(j["mean_kl"].get<double>(), 5e-4) << j.dump();
}

TEST(Bf16DotPlugin, RefusesClearlyWithoutAvx512Bf16) {
  HPCINFER_REQUIRE_DATA("models/stories260K/stories260K.bin");
  const auto d = test::shared_data() / "models/stories260K";
  auto r = test::run_command("HPCINFER_SIMD=avx2 " + test::bin() + " generate --model " + (d / "stories260K.bin").string() +
                             " --tokenizer " + (d / "tok512.bin").string() + " --weights bf16dot --prompt x -n 2 2>&1");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("AVX512-BF16"), std::string::npos) << r.output;
}
