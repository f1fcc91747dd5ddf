#include "core/backend/cpu_backend.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/machine_probe.hpp"
#include "core/runtime/sampler.hpp"
#include "kernels/cpu/ops.hpp"

namespace hpcinfer {

void CpuBackend::init(const BackendInit& init) { pool_ = std::make_unique<ThreadPool>(init.threads); }

std::string CpuBackend::description() const {
  return "cpu: " + std::to_string(pool_ ? pool_->threads() : 0) + " threads, kernels " + kernels::simd_level();
}

void* CpuBackend::alloc(size_t bytes) {
  const size_t rounded = std::max<size_t>((bytes + 63) / 64 * 64, 64);
  void* p = std::aligned_alloc(64, rounded);
  if (!p) throw std::runtime_error("cpu: out of memory allocating " + std::to_string(bytes) + " bytes");
  std::memset(p, 0, rounded);
  return p;
}
void CpuBackend::free(void* p) noexcept { std::free(p); }
void CpuBackend::copy_to_device(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
void CpuBackend::copy_to_host(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
void CpuBackend::copy(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }

void CpuBackend::rmsnorm(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* out) {
  for (int64_t r = 0; r < rows; ++r) kernels::rmsnorm(x + r * dim, w, dim, eps, out + r * dim);
}

void CpuBackend::add(float* x, const float* y, int64_t count) {
  for (int64_t i = 0; i < count; ++i) x[i] += y[i];
}

void CpuBackend::add_bias(float* x, const float* b, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) x[r * cols + c] += b[c];
}

void CpuBackend::swiglu(const float* gate, const float* up, int64_t count, float* out) {
  kernels::silu_mul(gate, up, count, out);
}

void CpuBackend::rope(float* x, int64_t n, int64_t heads, int64_t head_dim, const int* pos, const RopeTables& t) {
  const int64_t half = t.rotary_dim / 2;
  for (int64_t i = 0; i < n; ++i) {
    if (pos[i] < 0 || pos[i] >= t.max_pos)
      throw std::runtime_error("cpu rope: position " + std::to_string(pos[i]) + " outside the table of " +
                               std::to_string(t.max_pos));
    kernels::rope_rotate(x + i * heads * head_dim, int(heads), head_dim, t.rotary_dim, t.cos + pos[i] * half,
                         t.sin + pos[i] * half, t.interleaved);
  }
}

namespace {
// Offset (floats) of (slot, cache head, position) in a layer's cache [slots, kv_heads, max_ctx, head_dim].
size_t cache_row(const KvCacheShape& c, int64_t slot, int64_t head, int64_t pos) {
  return size_t(((slot * c.kv_heads + head) * c.max_ctx + pos) * c.head_dim);
}
void check_slot_pos(const char* op, const KvCacheShape& c, int64_t i, int slot, int pos) {
  if (slot < 0 || slot >= c.slots || pos < 0 || pos >= c.max_ctx)
    throw std::runtime_error(std::string("cpu ") + op + ": token " + std::to_string(i) + ": slot " +
                             std::to_string(slot) + " position " + std::to_string(pos) + " outside the KV cache (" +
                             std::to_string(c.slots) + " slots x " + std::to_string(c.max_ctx) + " positions)");
}
}  // namespace

void CpuBackend::kv_store(const float* k, const float* v, int64_t n, const int* slot, const int* pos,
                          const KvCacheShape& c, float* k_cache, float* v_cache) {
  const int64_t row = c.kv_heads * c.head_dim;
  for (int64_t i = 0; i < n; ++i) {
    check_slot_pos("kv_store", c, i, slot[i], pos[i]);
    for (int64_t h = 0; h < c.kv_heads; ++h) {
      const size_t at = cache_row(c, slot[i], h, pos[i]);
      std::copy(k + i * row + h * c.head_dim, k + i * row + (h + 1) * c.head_dim, k_cache + at);
      std::copy(v + i * row + h * c.head_dim, v + i * row + (h + 1) * c.head_dim, v_cache + at);
    }
  }
}

void CpuBackend::attention(const float* q, int64_t n, const int* slot, const int* pos, const float* k_cache,
                           const float* v_cache, const AttentionParams& p, float* out) {
  const int64_t hd = p.cache.head_dim, nh = p.n_heads, q_width = nh * hd, group = p.group;
  // Work items: (token, up to kHeadsPerItem consecutive query heads of one kv head), so each cached key and value
  // row is read once per item rather than once per head, with items enough to share among threads.
  constexpr int64_t kHeadsPerItem = 4;
  const int64_t qb = p.q_head_begin, qe = qb + nh;
  const int64_t chunks_per_kv = (group + kHeadsPerItem - 1) / kHeadsPerItem;
  const int64_t kv_first = qb / group, kv_count = (qe - 1) / group - kv_first + 1;
  const int64_t items_per_token = kv_count * chunks_per_kv;
  int64_t ctx_sum = 0, longest = 1;
  for (int64_t i = 0; i < n; ++i) {
    check_slot_pos("attention", p.cache, i, slot[i], pos[i]);
    const int64_t first = p.window > 0 ? std::max<int64_t>(0, pos[i] + 1 - p.window) : 0;
    ctx_sum += pos[i] + 1 - first;
    longest = std::max<int64_t>(longest, pos[i] + 1 - first);
  }
  for (int64_t kv = kv_first; kv < kv_first + kv_count; ++kv)
    if (kv - p.kv_head_begin < 0 || kv - p.kv_head_begin >= p.cache.kv_heads)
      throw std::runtime_error("cpu attention: query heads [" + std::to_string(qb) + ", " + std::to_string(qe) +
                               ") need kv head " + std::to_string(kv) + ", not among this cache's [" +
                               std::to_string(p.kv_head_begin) + ", " + std::to_string(p.kv_head_begin + p.cache.kv_heads) + ")");
  auto heads = [&](int64_t w0, int64_t w1) {
    std::vector<float> scores(static_cast<size_t>(longest * kHeadsPerItem));
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t i = w / items_per_token, item = w % items_per_token;
      const int64_t kv = kv_first + item / chunks_per_kv;  // global kv head
      const int64_t g0 = std::max(kv * group + (item % chunks_per_kv) * kHeadsPerItem, qb);
      const int64_t g1 = std::min({kv * group + (item % chunks_per_kv + 1) * kHeadsPerItem, (kv + 1) * group, qe});
      if (g0 >= g1) continue;
      const int64_t first = p.window > 0 ? std::max<int64_t>(0, pos[i] + 1 - p.window) : 0;
      const size_t base = cache_row(p.cache, slot[i], kv - p.kv_head_begin, first);
      kernels::attend_heads(q + i * q_width + (g0 - qb) * hd, g1 - g0, k_cache + base, v_cache + base,
                            pos[i] + 1 - first, hd, hd, p.scale, scores.data(), out + i * q_width + (g0 - qb) * hd,
                            p.sinks ? p.sinks + (g0 - qb) : nullptr);
    }
  };
  if (ctx_sum * nh * hd < (int64_t(1) << 16))
    heads(0, n * items_per_token);
  else
    pool_->parallel_for(n * items_per_token, heads);
}

void CpuBackend::select_rows(const float* x, int64_t cols, const int* rows, int64_t m, float* out) {
  for (int64_t j = 0; j < m; ++j) std::memcpy(out + j * cols, x + int64_t(rows[j]) * cols, size_t(cols) * sizeof(float));
}

void CpuBackend::argmax(const float* x, int64_t rows, int64_t cols, int* out) {
  for (int64_t r = 0; r < rows; ++r) out[r] = int(kernels::argmax(x + r * cols, cols));
}

void CpuBackend::sampling_candidates(const float* logits, int64_t rows, int64_t vocab, const float* temps,
                                     int64_t count, float* max, double* sum, float* cand_logits, int* cand_ids) {
  std::vector<int> order(static_cast<size_t>(vocab));
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = logits + r * vocab;
    float mx = row[0];
    for (int64_t i = 1; i < vocab; ++i) mx = std::max(mx, row[i]);
    double s = 0.0;  // the sum Sampler::sample forms over the whole row, in the same order
    for (int64_t i = 0; i < vocab; ++i) s += Sampler::weight(row[i], mx, temps[r]);
    max[r] = mx;
    sum[r] = s;
    for (int64_t i = 0; i < vocab; ++i) order[size_t(i)] = int(i);
    std::partial_sort(order.begin(), order.begin() + count, order.end(),
                      [&](int a, int b) { return row[a] != row[b] ? row[a] > row[b] : a < b; });
    for (int64_t i = 0; i < count; ++i) {
      cand_ids[r * count + i] = order[size_t(i)];
      cand_logits[r * count + i] = row[order[size_t(i)]];
    }
  }
}

void CpuBackend::scatter_add_rows(const float* src, int64_t m, int64_t cols, const int* rows, const float* scale,
                                  float* dst) {
  for (int64_t j = 0; j < m; ++j) {
    float* d = dst + int64_t(rows[j]) * cols;
    const float* x = src + j * cols;
    const float w = scale[j];
    for (int64_t c = 0; c < cols; ++c) d[c] += w * x[c];
  }
}

void CpuBackend::zero(void* p, size_t bytes) { std::memset(p, 0, bytes); }

void CpuBackend::copy_cols(const float* src, int64_t src_ld, float* dst, int64_t dst_ld, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * dst_ld, src + r * src_ld, size_t(cols) * sizeof(float));
}

void CpuBackend::linear_f32(const float* x, const float* w, int64_t n, int64_t rows, int64_t cols, float* y) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t r = 0; r < rows; ++r) {
      float acc = 0.0f;
      for (int64_t c = 0; c < cols; ++c) acc += x[i * cols + c] * w[r * cols + c];
      y[i * rows + r] = acc;
    }
}

namespace {
// The k largest of v (ties: the lower index), returned in ascending index order.
std::vector<int> top_k_indices(const std::vector<float>& v, int k) {
  std::vector<int> idx(v.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = int(i);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) {
    return v[size_t(a)] > v[size_t(b)] || (v[size_t(a)] == v[size_t(b)] && a < b);
  });
  idx.resize(size_t(k));
  std::sort(idx.begin(), idx.end());
  return idx;
}
}  // namespace

void CpuBackend::moe_route(const float* logits, int64_t n, const RouterSpec& r, const float* correction, int* ids,
                           float* weights) {
  const int E = r.n_experts, K = r.top_k;
  if (K < 1 || K > E) throw std::runtime_error("cpu moe_route: top_k " + std::to_string(K) + " of " + std::to_string(E));
  std::vector<float> p(static_cast<size_t>(E));
  for (int64_t i = 0; i < n; ++i) {
    const float* l = logits + i * E;
    std::vector<int> chosen;
    std::vector<double> w(static_cast<size_t>(K));
    if (r.kind == "softmax_topk") {  // softmax over all experts (f32, as transformers), then the top k
      float mx = l[0];
      for (int e = 1; e < E; ++e) mx = std::max(mx, l[e]);
      double sum = 0;
      for (int e = 0; e < E; ++e) sum += (p[size_t(e)] = std::exp(l[e] - mx));
      for (int e = 0; e < E; ++e) p[size_t(e)] = float(p[size_t(e)] / sum);
      chosen = top_k_indices(p, K);
      for (int k = 0; k < K; ++k) w[size_t(k)] = p[size_t(chosen[size_t(k)])];
    } else if (r.kind == "topk_softmax") {  // the top k logits, softmax over them
      p.assign(l, l + E);
      chosen = top_k_indices(p, K);
      float mx = l[chosen[0]];
      for (int e : chosen) mx = std::max(mx, l[e]);
      double sum = 0;
      for (int k = 0; k < K; ++k) sum += (w[size_t(k)] = std::exp(double(l[chosen[size_t(k)]] - mx)));
      for (double& x : w) x /= sum;
    } else if (r.kind == "sigmoid_group") {
      std::vector<float> score(static_cast<size_t>(E)), choice(static_cast<size_t>(E));
      for (int e = 0; e < E; ++e) {
        score[size_t(e)] = 1.0f / (1.0f + std::exp(-l[e]));
        choice[size_t(e)] = score[size_t(e)] + (correction ? correction[e] : 0.0f);
      }
      const int G = r.n_group, per = E / G;
      std::vector<float> group_score(static_cast<size_t>(G));
      for (int g = 0; g < G; ++g) {  // a group's score: the sum of its two best choice scores
        std::vector<float> in(choice.begin() + g * per, choice.begin() + (g + 1) * per);
        const std::vector<int> best = top_k_indices(in, std::min(2, per));
        float s = 0;
        for (int b : best) s += in[size_t(b)];
        group_score[size_t(g)] = s;
      }
      const std::vector<int> groups = top_k_indices(group_score, r.topk_group);
      std::vector<float> masked(static_cast<size_t>(E), 0.0f);  // experts of other groups score 0 (as transformers)
      for (int g : groups)
        for (int e = g * per; e < (g + 1) * per; ++e) masked[size_t(e)] = choice[size_t(e)];
      chosen = top_k_indices(masked, K);
      for (int k = 0; k < K; ++k) w[size_t(k)] = score[size_t(chosen[size_t(k)])];
    } else {
      throw std::runtime_error("cpu moe_route: unknown router kind '" + r.kind + "'");
    }
    if (r.norm_topk_prob) {
      double sum = 1e-20 * (r.kind == "sigmoid_group");
      for (double x : w) sum += x;
      for (double& x : w) x /= sum;
    }
    for (int k = 0; k < K; ++k) {
      ids[i * K + k] = chosen[size_t(k)];
      weights[i * K + k] = float(w[size_t(k)] * r.routed_scaling_factor);
    }
  }
}

void CpuBackend::swiglu_oai(const float* gate, const float* up, int64_t count, float alpha, float limit, float* out) {
  for (int64_t i = 0; i < count; ++i) {
    const float g = std::min(gate[i], limit), u = std::clamp(up[i], -limit, limit);
    out[i] = (u + 1.0f) * (g / (1.0f + std::exp(-alpha * g)));
  }
}

namespace {
void* create_cpu_backend() { return static_cast<Backend*>(new CpuBackend()); }
const PluginInfo kCpuInfo{kPluginAbiVersion, PluginKind::backend, "cpu", "1.0.0",
                          "host memory, OpenMP threads, AVX-512 / AVX2 / portable kernels (built in)",
                          &create_cpu_backend, nullptr};
}  // namespace

const PluginInfo& cpu_backend_plugin_info() { return kCpuInfo; }

}  // namespace hpcinfer
