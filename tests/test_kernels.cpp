// Every CPU kernel against a float64 reference on random shapes, odd sizes included.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/model/rope.hpp"
#include "kernels/cpu/convert.hpp"
#include "kernels/cpu/matmul.hpp"
#include "kernels/cpu/ops.hpp"
#include "support/test_support.hpp"

using namespace hpcinfer;

namespace {
using test::randn;
// Tolerance for an f32 dot of length k against f64: a few ulps times sqrt(k) times the magnitudes.
double dot_tol(int64_t k, double mag) { return 1e-6 * std::sqrt(double(k)) * mag + 1e-6; }
}  // namespace

struct Shape {
  int64_t n, rows, cols;
};
class MatmulTest : public ::testing::TestWithParam<Shape> {};

TEST_P(MatmulTest, F32AndBf16MatchFloat64Reference) {
  const auto [n, rows, cols] = GetParam();
  auto x = randn(static_cast<size_t>(n * cols), 1), w = randn(static_cast<size_t>(rows * cols), 2, 0.1f);
  std::vector<uint16_t> wb(static_cast<size_t>(kernels::panel_count(rows) * kernels::kPanelRows * cols), 0);
  std::vector<float> wb_f(w.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const uint16_t h = kernels::f32_to_bf16(w[static_cast<size_t>(r * cols + c)]);
      wb[kernels::bf16_panel_index(r, c, cols)] = h;
      wb_f[static_cast<size_t>(r * cols + c)] = kernels::bf16_to_f32(h);
    }
  std::vector<float> y(static_cast<size_t>(n * rows)), yb(static_cast<size_t>(n * rows));
  // Split the rows unevenly, as threads do.
  const int64_t cut = rows / 3;
  kernels::matmul_f32(x.data(), n, w.data(), cols, y.data(), rows, 0, cut);
  kernels::matmul_f32(x.data(), n, w.data(), cols, y.data(), rows, cut, rows);
  const int64_t panel_cut = cut / kernels::kPanelRows * kernels::kPanelRows;  // bf16 splits on a 16-row panel
  kernels::matmul_bf16(x.data(), n, wb.data(), cols, yb.data(), rows, 0, panel_cut);
  kernels::matmul_bf16(x.data(), n, wb.data(), cols, yb.data(), rows, panel_cut, rows);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t r = 0; r < rows; ++r) {
      double ref = 0, refb = 0, mag = 0;
      for (int64_t k = 0; k < cols; ++k) {
        ref += double(x[static_cast<size_t>(i * cols + k)]) * w[static_cast<size_t>(r * cols + k)];
        refb += double(x[static_cast<size_t>(i * cols + k)]) * wb_f[static_cast<size_t>(r * cols + k)];
        mag += std::fabs(double(x[static_cast<size_t>(i * cols + k)]) * w[static_cast<size_t>(r * cols + k)]);
      }
      ASSERT_NEAR(y[static_cast<size_t>(i * rows + r)], ref, dot_tol(cols, mag)) << "f32 n=" << i << " r=" << r;
      ASSERT_NEAR(yb[static_cast<size_t>(i * rows + r)], refb, dot_tol(cols, mag)) << "bf16 n=" << i << " r=" << r;
    }
}

TEST_P(MatmulTest, OutputRowDoesNotDependOnBatchComposition) {
  const auto [n, rows, cols] = GetParam();
  auto x = randn(static_cast<size_t>(n * cols), 3), w = randn(static_cast<size_t>(rows * cols), 4, 0.1f);
  std::vector<float> all(static_cast<size_t>(n * rows)), one(static_cast<size_t>(rows));
  kernels::matmul_f32(x.data(), n, w.data(), cols, all.data(), rows, 0, rows);
  for (int64_t i = 0; i < n; ++i) {
    kernels::matmul_f32(x.data() + i * cols, 1, w.data(), cols, one.data(), rows, 0, rows);
    for (int64_t r = 0; r < rows; ++r) ASSERT_EQ(one[static_cast<size_t>(r)], all[static_cast<size_t>(i * rows + r)]) << "bitwise, row " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, MatmulTest,
                         ::testing::Values(Shape{1, 1, 1}, Shape{1, 7, 33}, Shape{3, 5, 16}, Shape{4, 4, 64},
                                           Shape{5, 17, 31}, Shape{9, 13, 129}, Shape{1, 64, 1000},
                                           Shape{11, 70, 33}));

TEST(Ops, RmsnormMatchesFloat64) {
  for (int64_t dim : {1, 7, 64, 333}) {
    auto x = randn(static_cast<size_t>(dim), 5), w = randn(static_cast<size_t>(dim), 6);
    std::vector<float> out(static_cast<size_t>(dim));
    kernels::rmsnorm(x.data(), w.data(), dim, 1e-5f, out.data());
    double ss = 0;
    for (float v : x) ss += double(v) * v;
    const double s = 1.0 / std::sqrt(ss / double(dim) + 1e-5);
    for (int64_t i = 0; i < dim; ++i) EXPECT_NEAR(out[static_cast<size_t>(i)], x[static_cast<size_t>(i)] * s * w[static_cast<size_t>(i)], 1e-5) << dim;
  }
}

TEST(Ops, SoftmaxAndArgmax) {
  auto x = randn(101, 7, 5.0f);
  auto y = x;
  kernels::softmax(y.data(), int64_t(y.size()));
  double mx = *std::max_element(x.begin(), x.end()), sum = 0;
  for (float v : x) sum += std::exp(double(v) - mx);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], std::exp(double(x[i]) - mx) / sum, 1e-6);
  EXPECT_EQ(kernels::argmax(x.data(), int64_t(x.size())), std::max_element(x.begin(), x.end()) - x.begin());
}

TEST(Ops, SiluMul) {
  auto g = randn(37, 8), u = randn(37, 9);
  std::vector<float> out(37);
  kernels::silu_mul(g.data(), u.data(), 37, out.data());
  for (size_t i = 0; i < 37; ++i) EXPECT_NEAR(out[i], g[i] / (1.0 + std::exp(-double(g[i]))) * u[i], 1e-6);
}

TEST(Ops, RopeRotateHalfMatchesFloat64AndLlama3Scaling) {
  const int64_t hd = 10;
  for (float factor : {0.0f, 8.0f}) {
    RopeSpec sc;
    sc.theta = 500000.0f;
    if (factor > 0) sc.type = "llama3", sc.factor = factor;
    sc.original_max_position = 64;  // small, so every branch of the llama3 rule is taken for hd 10
    const RopeTablesHost t = make_rope_tables(sc, hd, 100);
    auto x = randn(static_cast<size_t>(2 * hd), 10);
    auto y = x;
    kernels::rope_rotate(y.data(), 2, hd, hd, t.cos.data() + 77 * hd / 2, t.sin.data() + 77 * hd / 2, false);
    for (int h = 0; h < 2; ++h)
      for (int64_t i = 0; i < hd / 2; ++i) {
        double f = 1.0 / std::pow(500000.0, double(2 * i) / hd);
        if (factor > 0) {
          const double wl = 2 * M_PI / f, low = 64.0 / 1.0, high = 64.0 / 4.0;
          if (wl > low) f /= factor;
          else if (wl >= high) {
            const double s = (64.0 / wl - 1.0) / 3.0;
            f = (1 - s) * f / factor + s * f;
          }
        }
        const double a = x[static_cast<size_t>(h * hd + i)], b = x[static_cast<size_t>(h * hd + i + hd / 2)], c = std::cos(77 * f),
                     s = std::sin(77 * f);
        EXPECT_NEAR(y[static_cast<size_t>(h * hd + i)], a * c - b * s, 1e-4) << "factor " << factor << " i " << i;
        EXPECT_NEAR(y[static_cast<size_t>(h * hd + i + hd / 2)], a * s + b * c, 1e-4);
      }
  }
}

TEST(Ops, AttendOneHeadMatchesFloat64) {
  const int64_t hd = 12, n_ctx = 9, stride = 3 * hd;  // keys interleaved with other heads
  auto q = randn(static_cast<size_t>(hd), 11), kv = randn(static_cast<size_t>(n_ctx * stride), 12), vv = randn(static_cast<size_t>(n_ctx * stride), 13);
  std::vector<float> scores(static_cast<size_t>(n_ctx)), out(static_cast<size_t>(hd));
  kernels::attend_one_head(q.data(), kv.data() + hd, vv.data() + hd, n_ctx, stride, hd, 1.0f / std::sqrt(float(hd)),
                           scores.data(), out.data());
  std::vector<double> s(static_cast<size_t>(n_ctx));
  double mx = -1e30, sum = 0;
  for (int64_t j = 0; j < n_ctx; ++j) {
    double d = 0;
    for (int64_t k = 0; k < hd; ++k) d += double(q[static_cast<size_t>(k)]) * kv[static_cast<size_t>(j * stride + hd + k)];
    s[static_cast<size_t>(j)] = d / std::sqrt(double(hd));
    mx = std::max(mx, s[static_cast<size_t>(j)]);
  }
  for (auto& v : s) sum += (v = std::exp(v - mx));
  for (int64_t k = 0; k < hd; ++k) {
    double ref = 0;
    for (int64_t j = 0; j < n_ctx; ++j) ref += s[static_cast<size_t>(j)] / sum * vv[static_cast<size_t>(j * stride + hd + k)];
    EXPECT_NEAR(out[static_cast<size_t>(k)], ref, 1e-5);
  }
}

// bf16dot (AVX512-BF16): against float64 of the bf16-rounded activations and weights, and bitwise batch invariance.
TEST(Bf16Dot, MatchesFloat64OfRoundedValuesAndIsBatchInvariant) {
  if (!kernels::bf16dot_supported()) GTEST_SKIP() << "this CPU has no AVX512-BF16 (or HPCINFER_SIMD caps it)";
  for (const Shape& sh : {Shape{1, 7, 33}, Shape{9, 40, 129}, Shape{13, 70, 64}, Shape{1, 64, 1000}}) {
    const auto [n, rows, cols] = sh;
    auto x = randn(static_cast<size_t>(n * cols), 41), w = randn(static_cast<size_t>(rows * cols), 42, 0.1f);
    std::vector<uint16_t> wd(static_cast<size_t>(kernels::panel_count(rows) * kernels::kPanelRows * ((cols + 1) / 2 * 2)), 0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        wd[kernels::bf16_pair_panel_index(r, c, cols)] = kernels::f32_to_bf16(w[static_cast<size_t>(r * cols + c)]);
    std::vector<float> y(static_cast<size_t>(n * rows)), one(static_cast<size_t>(rows));
    const int64_t cut = rows / 3 / kernels::kPanelRows * kernels::kPanelRows;
    kernels::matmul_bf16dot(x.data(), n, wd.data(), cols, y.data(), rows, 0, cut);
    kernels::matmul_bf16dot(x.data(), n, wd.data(), cols, y.data(), rows, cut, rows);
    for (int64_t i = 0; i < n; ++i) {
      kernels::matmul_bf16dot(x.data() + i * cols, 1, wd.data(), cols, one.data(), rows, 0, rows);
      for (int64_t r = 0; r < rows; ++r) {
        double ref = 0, mag = 0;
        for (int64_t k = 0; k < cols; ++k) {
          const double p = double(kernels::bf16_to_f32(kernels::f32_to_bf16(x[static_cast<size_t>(i * cols + k)]))) *
                           kernels::bf16_to_f32(kernels::f32_to_bf16(w[static_cast<size_t>(r * cols + k)]));
          ref += p, mag += std::fabs(p);
        }
        ASSERT_NEAR(y[static_cast<size_t>(i * rows + r)], ref, dot_tol(cols, mag)) << "n=" << i << " r=" << r;
        ASSERT_EQ(one[static_cast<size_t>(r)], y[static_cast<size_t>(i * rows + r)]) << "bitwise, token " << i;
      }
    }
  }
}

// Grouped-query attention: heads sharing a kv head, computed together, give bitwise each head's own result.
TEST(Ops, AttendHeadsEqualsOneHeadAtATimeBitwise) {
  for (int64_t n_q : {1, 3, 4})
    for (int64_t hd : {12, 64}) {
      const int64_t n_ctx = 37, stride = 2 * hd;
      auto q = randn(static_cast<size_t>(n_q * hd), 31), kv = randn(static_cast<size_t>(n_ctx * stride), 32),
           vv = randn(static_cast<size_t>(n_ctx * stride), 33);
      std::vector<float> scores(static_cast<size_t>(n_q * n_ctx)), out(static_cast<size_t>(n_q * hd)),
          one(static_cast<size_t>(hd));
      kernels::attend_heads(q.data(), n_q, kv.data() + hd, vv.data() + hd, n_ctx, stride, hd, 1.0f / std::sqrt(float(hd)),
                            scores.data(), out.data());
      for (int64_t g = 0; g < n_q; ++g) {
        kernels::attend_one_head(q.data() + g * hd, kv.data() + hd, vv.data() + hd, n_ctx, stride, hd,
                                 1.0f / std::sqrt(float(hd)), scores.data(),
                                 one.data());
        for (int64_t d = 0; d < hd; ++d)
          ASSERT_EQ(out[static_cast<size_t>(g * hd + d)], one[static_cast<size_t>(d)]) << "n_q " << n_q << " head " << g;
      }
    }
}

TEST(Convert, HalfAndBfloatRoundTripAndBlockDequantize) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 0x1p-14f, 3 * 0x1p-20f, 0x1p-24f})  // exact in f16, subnormals too
    EXPECT_FLOAT_EQ(kernels::f16_to_f32(kernels::f32_to_f16(f)), f) << f;
  EXPECT_EQ(kernels::f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(kernels::f32_to_bf16(1.00390625f), 0x3f80);  // tie rounds to even
  // One Q8_0 block: d = 0.5, q = -16..15 -> x = d * q
  uint8_t blk[34];
  const uint16_t d = kernels::f32_to_f16(0.5f);
  std::memcpy(blk, &d, 2);
  for (int i = 0; i < 32; ++i) blk[2 + i] = uint8_t(int8_t(i - 16));
  float out[32];
  kernels::dequantize_row(DType::q8_0, blk, 0, 32, out);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(out[i], 0.5f * float(i - 16));
  // A range inside the block (a tp shard of a quantized tensor): the same values, cut from the block.
  kernels::dequantize_row(DType::q8_0, blk, 8, 16, out);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(out[i], 0.5f * float(8 + i - 16));
}
