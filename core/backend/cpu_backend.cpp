#include "core/backend/cpu_backend.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/machine_probe.hpp"
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
                            pos[i] + 1 - first, hd, hd, p.scale, scores.data(), out + i * q_width + (g0 - qb) * hd);
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

namespace {
void* create_cpu_backend() { return static_cast<Backend*>(new CpuBackend()); }
const PluginInfo kCpuInfo{kPluginAbiVersion, PluginKind::backend, "cpu", "1.0.0",
                          "host memory, OpenMP threads, AVX-512 / AVX2 / portable kernels (built in)",
                          &create_cpu_backend, nullptr};
}  // namespace

const PluginInfo& cpu_backend_plugin_info() { return kCpuInfo; }

}  // namespace hpcinfer
