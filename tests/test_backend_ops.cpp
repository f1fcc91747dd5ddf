// Backend conformance, in the style of ggml's test-backend-ops: every op of every backend available on this host
// (the built-in cpu backend; plugins of kind `backend` whose probe says usable, e.g. cuda on a GPU machine) against a
// float64 reference computed here, on random shapes with odd sizes, with a tolerance per op. Matmuls go through every
// weights plugin that packs for the backend. A new backend joins by being found: no test code changes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/backend/cpu_backend.hpp"
#include "core/model/rope.hpp"
#include "core/plugin/plugin_registry.hpp"
#include "kernels/cpu/convert.hpp"
#include "kernels/cpu/matmul.hpp"
#include "support/test_support.hpp"

namespace hpcinfer {
namespace {

using test::randn;

// The backends this host can run: their names (the built-in cpu first).
std::vector<std::string> available_backends() {
  PluginRegistry reg({test::plugin_dir()});
  std::vector<std::string> out;
  for (const PluginEntry& e : PluginRegistry::builtins())
    if (e.kind == "backend") out.push_back(e.name);
  for (const PluginEntry& e : reg.scan())
    if (e.loaded && e.usable && e.kind == "backend" && e.shadowed_by.empty()) out.push_back(e.name);
  return out;
}

class BackendOps : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    be_ = reg_.create_backend(GetParam());
    be_->init({2, 0});
  }
  // Backend copies of host data, freed at the end of the test.
  template <typename T>
  T* up(const std::vector<T>& v) {
    void* p = be_->alloc(std::max<size_t>(v.size(), 1) * sizeof(T));
    owned_.push_back(p);
    be_->copy_to_device(p, v.data(), v.size() * sizeof(T));
    return static_cast<T*>(p);
  }
  float* zeros(size_t n) { return up(std::vector<float>(n, 0.0f)); }
  template <typename T>
  std::vector<T> down(const T* p, size_t n) {
    std::vector<T> v(n);
    be_->copy_to_host(v.data(), p, n * sizeof(T));
    return v;
  }
  void TearDown() override {
    for (void* p : owned_) be_->free(p);
  }
  // max over i of |got - want| / (1 + |want|)
  static double rel_err(const std::vector<float>& got, const std::vector<double>& want) {
    EXPECT_EQ(got.size(), want.size());
    double w = 0;
    for (size_t i = 0; i < got.size() && i < want.size(); ++i)
      w = std::max(w, std::abs(double(got[i]) - want[i]) / (1.0 + std::abs(want[i])));
    return w;
  }

  PluginRegistry reg_{{test::plugin_dir()}};
  std::unique_ptr<Backend> be_;
  std::vector<void*> owned_;
};

TEST_P(BackendOps, RmsnormAddBiasSwigluSelectArgmax) {
  for (int64_t rows : {1, 3, 7})
    for (int64_t dim : {1, 5, 64, 67}) {
      SCOPED_TRACE("rows " + std::to_string(rows) + " dim " + std::to_string(dim));
      const auto x = randn(size_t(rows * dim), 1, 3.0f), w = randn(size_t(dim), 2), y = randn(size_t(rows * dim), 3);
      const float eps = 1e-5f;
      float* dx = up(x);
      float* out = zeros(x.size());
      be_->rmsnorm(dx, up(w), rows, dim, eps, out);
      std::vector<double> want(x.size());
      for (int64_t r = 0; r < rows; ++r) {
        double ss = 0;
        for (int64_t i = 0; i < dim; ++i) ss += double(x[size_t(r * dim + i)]) * x[size_t(r * dim + i)];
        const double s = 1.0 / std::sqrt(ss / double(dim) + eps);
        for (int64_t i = 0; i < dim; ++i) want[size_t(r * dim + i)] = x[size_t(r * dim + i)] * s * w[size_t(i)];
      }
      EXPECT_LE(rel_err(down(out, x.size()), want), 2e-6) << "rmsnorm";
      be_->rmsnorm(dx, up(w), rows, dim, eps, dx);  // in place
      EXPECT_LE(rel_err(down(dx, x.size()), want), 2e-6) << "rmsnorm in place";

      float* a = up(x);
      be_->add(a, up(y), rows * dim);
      for (size_t i = 0; i < want.size(); ++i) want[i] = double(x[i]) + y[i];
      EXPECT_LE(rel_err(down(a, x.size()), want), 1e-7) << "add";

      float* b = up(x);
      be_->add_bias(b, up(w), rows, dim);
      for (size_t i = 0; i < want.size(); ++i) want[i] = double(x[i]) + w[i % size_t(dim)];
      EXPECT_LE(rel_err(down(b, x.size()), want), 1e-7) << "add_bias";

      float* g = up(x);
      be_->swiglu(g, up(y), rows * dim, g);
      for (size_t i = 0; i < want.size(); ++i) want[i] = double(x[i]) / (1.0 + std::exp(-double(x[i]))) * y[i];
      EXPECT_LE(rel_err(down(g, x.size()), want), 1e-6) << "swiglu";

      std::vector<int> pick{int(rows - 1), 0};
      float* sel = zeros(size_t(2 * dim));
      be_->select_rows(dx, dim, up(pick), 2, sel);
      const auto got = down(sel, size_t(2 * dim));
      const auto normed = down(dx, x.size());
      for (int64_t i = 0; i < dim; ++i) {
        EXPECT_EQ(got[size_t(i)], normed[size_t((rows - 1) * dim + i)]);
        EXPECT_EQ(got[size_t(dim + i)], normed[size_t(i)]);
      }

      std::vector<float> ties = x;
      ties[size_t(dim / 2)] = ties[size_t(dim - 1)] = 100.0f;  // row 0: the first of two equal maxima
      int* am = up(std::vector<int>(size_t(rows), -1));
      be_->argmax(up(ties), rows, dim, am);
      const auto idx = down(am, size_t(rows));
      for (int64_t r = 0; r < rows; ++r) {
        const auto row = ties.begin() + r * dim;
        EXPECT_EQ(idx[size_t(r)], int(std::max_element(row, row + dim) - row)) << "argmax row " << r;
      }
    }
}

TEST_P(BackendOps, RopeHalfInterleavedAndPartial) {
  for (bool interleaved : {false, true})
    for (int64_t head_dim : {4, 10, 64})
      for (int64_t rot : {head_dim, head_dim / 2 / 2 * 2})
        for (int64_t heads : {1, 3}) {
          if (rot < 2) continue;
          SCOPED_TRACE("interleaved " + std::to_string(interleaved) + " head_dim " + std::to_string(head_dim) +
                       " rotary " + std::to_string(rot) + " heads " + std::to_string(heads));
          RopeSpec spec;
          spec.theta = 10000.0f;
          spec.rotary_dim = rot;
          spec.interleaved = interleaved;
          const int max_pos = 50;
          const RopeTablesHost t = make_rope_tables(spec, head_dim, max_pos);
          const std::vector<int> pos{0, 7, 49, 3};
          const int64_t n = int64_t(pos.size());
          const auto x = randn(size_t(n * heads * head_dim), 9);
          float* dx = up(x);
          be_->rope(dx, n, heads, head_dim, up(pos), {up(t.cos), up(t.sin), rot, max_pos, interleaved});
          std::vector<double> want(x.begin(), x.end());
          const int64_t half = rot / 2;
          for (int64_t i = 0; i < n; ++i)
            for (int64_t h = 0; h < heads; ++h)
              for (int64_t k = 0; k < half; ++k) {
                const size_t base = size_t((i * heads + h) * head_dim);
                const size_t a = base + size_t(interleaved ? 2 * k : k), b = base + size_t(interleaved ? 2 * k + 1 : k + half);
                const double c = t.cos[size_t(pos[size_t(i)] * half + k)], s = t.sin[size_t(pos[size_t(i)] * half + k)];
                want[a] = x[a] * c - x[b] * s;
                want[b] = x[a] * s + x[b] * c;
              }
          EXPECT_LE(rel_err(down(dx, x.size()), want), 1e-6);
        }
}

// KV store then causal attention for a prefill chunk of one sequence and a decode token of another, with GQA, a
// rank's subset of the heads (as tensor parallelism gives it), odd head sizes and a sliding window.
TEST_P(BackendOps, KvStoreAndAttention) {
  std::mt19937 rng(11);
  struct Shape { int64_t group, kv_heads, head_dim, window, q_first_kv, q_heads; };
  const Shape shapes[] = {{1, 1, 8, 0, 0, 1}, {4, 2, 12, 0, 0, 8}, {3, 3, 20, 3, 1, 5}, {2, 2, 64, 0, 1, 2},
                          {5, 1, 33, 4, 0, 5}};
  for (const Shape& sh : shapes) {
    SCOPED_TRACE("group " + std::to_string(sh.group) + " kv " + std::to_string(sh.kv_heads) + " hd " +
                 std::to_string(sh.head_dim) + " window " + std::to_string(sh.window));
    const int64_t hd = sh.head_dim, max_ctx = 24, slots = 3;
    // This rank's cache holds kv heads [kv0, kv0 + kv_heads) of a model with more; its query heads start inside them.
    const int64_t kv0 = 2, qb = (kv0 + sh.q_first_kv) * sh.group + (sh.group > 1 ? 1 : 0);
    const int64_t nh = std::min<int64_t>(sh.q_heads, (kv0 + sh.kv_heads) * sh.group - qb);
    const KvCacheShape cache{slots, sh.kv_heads, max_ctx, hd};
    float* kc = zeros(cache.floats());
    float* vc = zeros(cache.floats());
    // Tokens: slot 2 positions 0..9 (a prefill), then slot 0 positions 0..4, then slot 0 position 5 alone (decode).
    std::vector<int> slot, pos;
    for (int p = 0; p < 10; ++p) slot.push_back(2), pos.push_back(p);
    for (int p = 0; p < 5; ++p) slot.push_back(0), pos.push_back(p);
    const int64_t n = int64_t(slot.size());
    const auto k = randn(size_t(n * sh.kv_heads * hd), 21), v = randn(size_t(n * sh.kv_heads * hd), 22);
    const auto q = randn(size_t(n * nh * hd), 23);
    AttentionParams p;
    p.n_heads = nh, p.q_head_begin = qb, p.kv_head_begin = kv0, p.group = sh.group, p.window = sh.window;
    p.scale = 1.0f / std::sqrt(float(hd));
    p.cache = cache;
    be_->kv_store(up(k), up(v), n, up(slot), up(pos), cache, kc, vc);
    float* out = zeros(size_t(n * nh * hd));
    be_->attention(up(q), n, up(slot), up(pos), kc, vc, p, out);
    // Then the decode token: its own k/v stored first.
    const std::vector<int> dslot{0}, dpos{5};
    const auto k1 = randn(size_t(sh.kv_heads * hd), 24), v1 = randn(size_t(sh.kv_heads * hd), 25);
    const auto q1 = randn(size_t(nh * hd), 26);
    be_->kv_store(up(k1), up(v1), 1, up(dslot), up(dpos), cache, kc, vc);
    float* out1 = zeros(size_t(nh * hd));
    be_->attention(up(q1), 1, up(dslot), up(dpos), kc, vc, p, out1);

    // Reference: every token's keys/values by (slot, position), float64 softmax.
    auto key = [&](int s, int ps, int64_t kvh, int64_t d, bool value) -> double {
      if (s == 0 && ps == 5) return (value ? v1 : k1)[size_t(kvh * hd + d)];
      for (int64_t i = 0; i < n; ++i)
        if (slot[size_t(i)] == s && pos[size_t(i)] == ps) return (value ? v : k)[size_t((i * sh.kv_heads + kvh) * hd + d)];
      ADD_FAILURE() << "no token at slot " << s << " position " << ps;
      return 0;
    };
    auto reference = [&](const std::vector<float>& qq, int64_t i, int s, int ps, std::vector<double>& want) {
      for (int64_t h = 0; h < nh; ++h) {
        const int64_t kvh = (qb + h) / sh.group - kv0;
        const int first = sh.window > 0 ? std::max<int>(0, ps + 1 - int(sh.window)) : 0;
        std::vector<double> sc;
        for (int j = first; j <= ps; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < hd; ++d) dot += double(qq[size_t((i * nh + h) * hd + d)]) * key(s, j, kvh, d, false);
          sc.push_back(dot * p.scale);
        }
        const double mx = *std::max_element(sc.begin(), sc.end());
        double sum = 0;
        for (double& e : sc) sum += (e = std::exp(e - mx));
        for (int64_t d = 0; d < hd; ++d) {
          double o = 0;
          for (int j = first; j <= ps; ++j) o += sc[size_t(j - first)] / sum * key(s, j, kvh, d, true);
          want[size_t((i * nh + h) * hd + d)] = o;
        }
      }
    };
    std::vector<double> want(size_t(n * nh * hd)), want1(size_t(nh * hd));
    for (int64_t i = 0; i < n; ++i) reference(q, i, slot[size_t(i)], pos[size_t(i)], want);
    reference(q1, 0, 0, 5, want1);
    EXPECT_LE(rel_err(down(out, want.size()), want), 2e-6) << "prefill";
    EXPECT_LE(rel_err(down(out1, want1.size()), want1), 2e-6) << "decode";
  }
}

// Matmul and embedding gather through every weights plugin that packs for this backend, on odd shapes; the
// reference uses the weights as the format stores them (dequantize_row), so the check is of the arithmetic:
// f32 / bf16 weights with f32 activations to 1e-5, activation-quantizing formats (int8, bf16dot) to their bound.
TEST_P(BackendOps, MatmulAndGatherThroughEveryWeightsPlugin) {
  PluginRegistry reg({test::plugin_dir()});
  int formats = 0;
  for (const PluginEntry& e : reg.scan()) {
    if (!e.loaded || !e.usable || e.kind != "weights" || !e.shadowed_by.empty()) continue;
    auto fmt = reg.create_weights(e.name);
    if (!fmt->supports_backend(GetParam())) continue;
    ++formats;
    // A device's prefill GEMM rounds bf16 activations (tensor cores): bf16 then within 1e-2 like bf16dot; int8 and int4
    // quantize the activations (W8A8, W4A8).
    const bool device = GetParam() != "cpu";
    const double tol = e.name == "int8" || e.name == "int4" ? 2e-2 : (e.name == "bf16dot" || (device && e.name == "bf16")) ? 1e-2 : 1e-5;
    for (int64_t rows : {1, 17, 40})
      for (int64_t cols : {32, 96, 100}) {
        if (e.name == "int8" && cols % 32) continue;  // int8 rows end in a zero-padded group: covered by test_int8
        for (int64_t n : {1, 5, 20}) {  // 20: past a device's decode GEMV (its prefill GEMM path)
          SCOPED_TRACE(e.name + " rows " + std::to_string(rows) + " cols " + std::to_string(cols) + " n " + std::to_string(n));
          const auto w = randn(size_t((rows + 3) * cols), 31, 0.5f), x = randn(size_t(n * cols), 32);
          const TensorView view{"w", DType::f32, w.data(), rows + 3, cols};
          auto m = fmt->pack(view, {3, rows + 3}, {0, cols}, *be_);
          ASSERT_EQ(m->rows(), rows);
          if (GetParam() == "cpu")
            EXPECT_EQ(m->bytes(), fmt->bytes(rows, cols)) << "bytes() must be what the planner counts";
          else  // a device layout pads rows instead of panels: the planner's figure stays close
            EXPECT_LE(double(m->bytes()), 2.0 * double(fmt->bytes(rows, cols)));
          std::vector<float> stored(size_t(rows * cols));
          for (int64_t r = 0; r < rows; ++r) m->dequantize_row(r, stored.data() + r * cols);
          float* y = zeros(size_t(n * rows));
          m->matmul(up(x), n, y);
          std::vector<double> want(size_t(n * rows));
          for (int64_t i = 0; i < n; ++i)
            for (int64_t r = 0; r < rows; ++r) {
              double acc = 0;
              for (int64_t c = 0; c < cols; ++c) acc += double(x[size_t(i * cols + c)]) * stored[size_t(r * cols + c)];
              want[size_t(i * rows + r)] = acc;
            }
          double scale = 0;
          for (double v : want) scale = std::max(scale, std::abs(v));
          const auto got = down(y, want.size());
          double worst = 0;
          for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]) / (1.0 + scale));
          EXPECT_LE(worst, tol) << "matmul";
          // Gather: ids inside and outside the shard (which starts at row 3 of the whole tensor).
          const std::vector<int> ids{3, int(rows + 2), 0, int(rows + 3)};
          float* g = zeros(size_t(4 * cols));
          m->gather_rows(up(ids), 4, 3, g);
          const auto gr = down(g, size_t(4 * cols));
          for (int64_t c = 0; c < cols; ++c) {
            EXPECT_EQ(gr[size_t(c)], stored[size_t(c)]);
            EXPECT_EQ(gr[size_t(cols + c)], stored[size_t((rows - 1) * cols + c)]);
            EXPECT_EQ(gr[size_t(2 * cols + c)], 0.0f);
            EXPECT_EQ(gr[size_t(3 * cols + c)], 0.0f);
          }
        }
      }
  }
  EXPECT_GE(formats, 1) << "no weights plugin packs for backend " << GetParam();
}

// The MoE ops against the host backend (itself checked end to end by the MoE references in test_hf_reference):
// routers of the three kinds (with groups, a correction bias, renormalisation and scaling), the f32 router
// matmul, scatter-add in order with repeated rows, gpt-oss's clamped SwiGLU, strided copies and zeroing.
TEST_P(BackendOps, MoeOpsAgreeWithTheHostBackend) {
  CpuBackend host(1);
  const int64_t n = 7, E = 16, D = 24;
  const auto logits = randn(size_t(n * E), 41, 2.0f), corr = randn(size_t(E), 42, 0.5f);
  for (const char* kind : {"softmax_topk", "topk_softmax", "sigmoid_group"}) {
    for (bool norm : {false, true}) {
      SCOPED_TRACE(std::string(kind) + (norm ? " normalised" : ""));
      RouterSpec r;
      r.kind = kind;
      r.n_experts = int(E);
      r.top_k = 4;
      r.norm_topk_prob = norm;
      r.n_group = std::string(kind) == "sigmoid_group" ? 4 : 1;
      r.topk_group = std::string(kind) == "sigmoid_group" ? 2 : 1;
      r.routed_scaling_factor = 2.5f;
      const bool with_corr = std::string(kind) == "sigmoid_group";
      std::vector<int> ids_h(size_t(n * 4));
      std::vector<float> w_h(size_t(n * 4));
      host.moe_route(logits.data(), n, r, with_corr ? corr.data() : nullptr, ids_h.data(), w_h.data());
      int* ids_d = static_cast<int*>(be_->alloc(ids_h.size() * sizeof(int)));
      owned_.push_back(ids_d);
      float* w_d = zeros(w_h.size());
      be_->moe_route(up(logits), n, r, with_corr ? up(corr) : nullptr, ids_d, w_d);
      EXPECT_EQ(down(ids_d, ids_h.size()), ids_h);
      const auto w = down(w_d, w_h.size());
      for (size_t i = 0; i < w.size(); ++i) EXPECT_NEAR(w[i], w_h[i], 1e-5f * (1.0f + std::abs(w_h[i])));
    }
  }
  // linear_f32, swiglu_oai, scatter_add_rows (row 2 twice), copy_cols, zero.
  const auto x = randn(size_t(n * D), 43), wr = randn(size_t(E * D), 44, 0.3f), g = randn(size_t(n * D), 45, 3.0f);
  std::vector<float> y_h(size_t(n * E));
  host.linear_f32(x.data(), wr.data(), n, E, D, y_h.data());
  float* y_d = zeros(y_h.size());
  be_->linear_f32(up(x), up(wr), n, E, D, y_d);
  auto y = down(y_d, y_h.size());
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], y_h[i], 1e-5f * (1.0f + std::abs(y_h[i])));
  std::vector<float> s_h(x.size());
  host.swiglu_oai(g.data(), x.data(), n * D, 1.702f, 2.0f, s_h.data());
  float* s_d = zeros(s_h.size());
  be_->swiglu_oai(up(g), up(x), n * D, 1.702f, 2.0f, s_d);
  auto sv = down(s_d, s_h.size());
  for (size_t i = 0; i < sv.size(); ++i) EXPECT_NEAR(sv[i], s_h[i], 1e-5f * (1.0f + std::abs(s_h[i])));
  const std::vector<int> rows{2, 0, 2, 5};
  const std::vector<float> scale{0.5f, -1.0f, 2.0f, 0.25f};
  std::vector<float> acc_h = randn(size_t(6 * D), 46);
  host.scatter_add_rows(x.data(), 4, D, rows.data(), scale.data(), acc_h.data());
  float* acc_d = up(randn(size_t(6 * D), 46));
  be_->scatter_add_rows(up(x), 4, D, up(rows), up(scale), acc_d);
  auto acc = down(acc_d, acc_h.size());
  for (size_t i = 0; i < acc.size(); ++i) EXPECT_NEAR(acc[i], acc_h[i], 1e-6f * (1.0f + std::abs(acc_h[i])));
  float* c_d = zeros(size_t(3 * 10));
  be_->copy_cols(up(x), D, c_d, 10, 3, 7);
  const auto c = down(c_d, size_t(30));
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t k = 0; k < 10; ++k) EXPECT_EQ(c[size_t(r * 10 + k)], k < 7 ? x[size_t(r * D + k)] : 0.0f);
  float* z = up(x);
  be_->zero(z + 3, 5 * sizeof(float));
  const auto zv = down(z, size_t(10));
  for (int64_t k = 0; k < 10; ++k) EXPECT_EQ(zv[size_t(k)], (k >= 3 && k < 8) ? 0.0f : x[size_t(k)]);
}

// Sampling candidates where the logits are: the same max, sum and candidate set as the host computes.
TEST_P(BackendOps, SamplingCandidatesAgreeWithTheHostBackend) {
  CpuBackend host(1);
  const int64_t rows = 3, V = 5003, C = 100;
  auto logits = randn(size_t(rows * V), 51, 4.0f);
  logits[17] = logits[18] = 50.0f;  // ties at the top
  const std::vector<float> temps{0.7f, 1.0f, 3.0f};
  std::vector<float> mx_h(3), mx_d(3), cl_h(size_t(rows * C)), cl_d(size_t(rows * C));
  std::vector<double> sum_h(3), sum_d(3);
  std::vector<int> ci_h(size_t(rows * C)), ci_d(size_t(rows * C));
  host.sampling_candidates(logits.data(), rows, V, temps.data(), C, mx_h.data(), sum_h.data(), cl_h.data(), ci_h.data());
  be_->sampling_candidates(up(logits), rows, V, temps.data(), C, mx_d.data(), sum_d.data(), cl_d.data(), ci_d.data());
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_EQ(mx_d[size_t(r)], mx_h[size_t(r)]);
    EXPECT_NEAR(sum_d[size_t(r)], sum_h[size_t(r)], 1e-5 * sum_h[size_t(r)]);
    std::vector<int> a(ci_h.begin() + r * C, ci_h.begin() + (r + 1) * C), b(ci_d.begin() + r * C, ci_d.begin() + (r + 1) * C);
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    EXPECT_EQ(a, b) << "row " << r;
    for (int64_t i = 0; i < C; ++i) EXPECT_EQ(cl_d[size_t(r * C + i)], logits[size_t(r * V + ci_d[size_t(r * C + i)])]);
  }
}

INSTANTIATE_TEST_SUITE_P(Available, BackendOps, ::testing::ValuesIn(available_backends()),
                         [](const auto& info) { return info.param; });

// RoPE tables of every type against their float64 formulas (the cos/sin the ops above rotate by).
TEST(RopeTables, EveryTypeMatchesItsFormula) {
  const int64_t hd = 16;
  for (const char* type : {"default", "linear", "llama3", "yarn"}) {
    SCOPED_TRACE(type);
    RopeSpec s;
    s.type = type;
    s.theta = 10000.0f;
    s.factor = 4.0f;
    s.original_max_position = 64;
    const RopeTablesHost t = make_rope_tables(s, hd, 200);
    double att = 1.0;
    for (int64_t i = 0; i < hd / 2; ++i) {
      const double base = std::pow(10000.0, -2.0 * double(i) / double(hd));
      double f = base;
      if (s.type == "linear") f = base / 4.0;
      if (s.type == "llama3") {
        const double wl = 2 * M_PI / base;
        if (wl > 64.0) f = base / 4.0;
        else if (wl >= 16.0) {
          const double sm = (64.0 / wl - 1.0) / 3.0;
          f = (1 - sm) * base / 4.0 + sm * base;
        }
      }
      if (s.type == "yarn") {  // YaRN (Peng et al. 2023): ramp between the dims turning 32 and 1 times over 64 positions
        auto dim_for = [&](double rot) { return hd * std::log(64.0 / (rot * 2 * M_PI)) / (2 * std::log(10000.0)); };
        const double lo = std::max(std::floor(dim_for(32.0)), 0.0), hi = std::min(std::ceil(dim_for(1.0)), double(hd - 1));
        const double ramp = std::clamp((double(i) - lo) / (hi - lo), 0.0, 1.0);
        f = base / 4.0 * ramp + base * (1 - ramp);
        att = 0.1 * std::log(4.0) + 1.0;
      }
      for (int p : {1, 63, 199}) {
        EXPECT_NEAR(t.cos[size_t(p * hd / 2 + i)], std::cos(p * f) * att, 2e-4 * p / 64 + 1e-6) << "i " << i << " p " << p;
        EXPECT_NEAR(t.sin[size_t(p * hd / 2 + i)], std::sin(p * f) * att, 2e-4 * p / 64 + 1e-6) << "i " << i << " p " << p;
      }
    }
  }
}

}  // namespace
}  // namespace hpcinfer
