// Element-wise, normalisation, RoPE, cache, routing and row kernels of the cuda backend (see ops.hpp).
#include <cuda_bf16.h>

#include <cfloat>

#include "kernels/cuda/ops.hpp"

namespace hpcinfer::cuda {
namespace {

constexpr int kThreads = 256;
inline unsigned blocks_for(int64_t count, int threads = kThreads) {
  const int64_t b = (count + threads - 1) / threads;
  return unsigned(b < 1 ? 1 : (b > 2147483647 ? 2147483647 : b));
}

__device__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
__device__ float block_sum(float v) {
  __shared__ float part[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) part[warp] = v;
  __syncthreads();
  float t = lane < warps ? part[lane] : 0.0f;
  return warp_sum(t);
}

__global__ void k_rmsnorm(const float* x, const float* w, int64_t dim, float eps, float* out) {
  const float* xr = x + blockIdx.x * dim;
  float* orow = out + blockIdx.x * dim;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) ss += xr[i] * xr[i];
  ss = block_sum(ss);
  const float scale = rsqrtf(ss / float(dim) + eps);
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) orow[i] = xr[i] * scale * w[i];
}

__global__ void k_add(float* x, const float* y, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x)
    x[i] += y[i];
}
__global__ void k_add_bias(float* x, const float* b, int64_t rows, int64_t cols) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < rows * cols;
       i += int64_t(gridDim.x) * blockDim.x)
    x[i] += b[i % cols];
}
__global__ void k_swiglu(const float* gate, const float* up, int64_t count, float* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = gate[i];
    out[i] = g / (1.0f + expf(-g)) * up[i];
  }
}
__global__ void k_swiglu_oai(const float* gate, const float* up, int64_t count, float alpha, float limit, float* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = fminf(gate[i], limit), u = fminf(fmaxf(up[i], -limit), limit);
    out[i] = (u + 1.0f) * (g / (1.0f + expf(-alpha * g)));
  }
}

// One thread per (token, head, rotated pair).
__global__ void k_rope(float* x, int64_t n, int64_t heads, int64_t head_dim, const int* pos, const float* cos,
                       const float* sin, int64_t half, int64_t max_pos, bool interleaved) {
  const int64_t total = n * heads * half;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = t / (heads * half), h = (t / half) % heads, j = t % half;
    const int p = pos[i];
    if (p < 0 || p >= max_pos) continue;
    float* v = x + (i * heads + h) * head_dim;
    const float c = cos[p * half + j], s = sin[p * half + j];
    const int64_t a_at = interleaved ? 2 * j : j, b_at = interleaved ? 2 * j + 1 : j + half;
    const float a = v[a_at], b = v[b_at];
    v[a_at] = a * c - b * s;
    v[b_at] = a * s + b * c;
  }
}

__global__ void k_kv_store(const float* k, const float* v, int64_t n, const int* slot, const int* pos, CacheDims c,
                           float* kc, float* vc) {
  const int64_t row = c.kv_heads * c.head_dim, total = n * row;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = t / row, h = (t % row) / c.head_dim, d = t % c.head_dim;
    const int sl = slot[i], p = pos[i];
    if (sl < 0 || sl >= c.slots || p < 0 || p >= c.max_ctx) continue;
    const int64_t at = ((int64_t(sl) * c.kv_heads + h) * c.max_ctx + p) * c.head_dim + d;
    kc[at] = k[t];
    vc[at] = v[t];
  }
}

// ---- attention: one block of 4 warps per (token, query head, context chunk); each warp takes every 4th key of the
// chunk with an online softmax, each lane holds head_dim / 32 output values; the warps then merge. ----
constexpr int kAttnWarps = 4;
constexpr int kMaxHeadDimPerLane = 8;  // head_dim <= 256
constexpr float kNoScore = -1e30f;     // "no key yet": exp(kNoScore - m) is 0 for any real m

__global__ void k_attention(const float* q, int64_t n, const int* slot, const int* pos, const float* k_cache,
                            const float* v_cache, AttentionArgs a, int splits, float* partials, float* out) {
  const int64_t i = blockIdx.x, h = blockIdx.y, split = blockIdx.z;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t hd = a.cache.head_dim;
  const int sl = slot[i], p = pos[i];
  const bool valid = sl >= 0 && sl < a.cache.slots && p >= 0 && p < a.cache.max_ctx;
  const int64_t first = a.window > 0 ? max(int64_t(0), int64_t(p) + 1 - a.window) : 0;
  const int64_t len = valid ? int64_t(p) + 1 - first : 0;
  const int64_t chunk = (len + splits - 1) / splits;
  const int64_t j0 = first + split * chunk, j1 = min(first + len, j0 + chunk);
  const int64_t kv = (a.q_head_begin + h) / a.group - a.kv_head_begin;
  const bool kv_ok = kv >= 0 && kv < a.cache.kv_heads;
  const float* qh = q + (i * a.n_heads + h) * hd;
  float qv[kMaxHeadDimPerLane], acc[kMaxHeadDimPerLane];
#pragma unroll
  for (int t = 0; t < kMaxHeadDimPerLane; ++t) {
    const int64_t d = lane + 32 * t;
    qv[t] = d < hd ? qh[d] : 0.0f;
    acc[t] = 0.0f;
  }
  float m = kNoScore, l = 0.0f;
  if (valid && kv_ok) {
    const size_t base = size_t(((int64_t(sl) * a.cache.kv_heads + kv) * a.cache.max_ctx) * hd);
    for (int64_t j = j0 + warp; j < j1; j += kAttnWarps) {
      const float* kr = k_cache + base + size_t(j * hd);
      const float* vr = v_cache + base + size_t(j * hd);
      float dot = 0.0f;
#pragma unroll
      for (int t = 0; t < kMaxHeadDimPerLane; ++t) {
        const int64_t d = lane + 32 * t;
        if (d < hd) dot += qv[t] * kr[d];
      }
      const float s = warp_sum(dot) * a.scale;
      const float m_new = fmaxf(m, s), corr = expf(m - m_new), pj = expf(s - m_new);
      l = l * corr + pj;
#pragma unroll
      for (int t = 0; t < kMaxHeadDimPerLane; ++t) {
        const int64_t d = lane + 32 * t;
        acc[t] = acc[t] * corr + (d < hd ? pj * vr[d] : 0.0f);
      }
      m = m_new;
    }
  }
  // Merge the warps: shared (m, l) per warp and acc per warp.
  __shared__ float sm[kAttnWarps], sl_[kAttnWarps];
  __shared__ float sacc[kAttnWarps][32 * kMaxHeadDimPerLane];
  if (lane == 0) {
    sm[warp] = m;
    sl_[warp] = l;
  }
#pragma unroll
  for (int t = 0; t < kMaxHeadDimPerLane; ++t) sacc[warp][lane + 32 * t] = acc[t];
  __syncthreads();
  if (warp != 0) return;
  float mm = kNoScore;
  for (int w = 0; w < kAttnWarps; ++w) mm = fmaxf(mm, sm[w]);
  float ll = 0.0f, f[kAttnWarps];
  for (int w = 0; w < kAttnWarps; ++w) {
    f[w] = expf(sm[w] - mm);
    ll += sl_[w] * f[w];
  }
  float o[kMaxHeadDimPerLane];
#pragma unroll
  for (int t = 0; t < kMaxHeadDimPerLane; ++t) {
    float s = 0.0f;
    for (int w = 0; w < kAttnWarps; ++w) s += sacc[w][lane + 32 * t] * f[w];
    o[t] = s;
  }
  if (splits > 1) {  // partial: [head_dim] sums, then m and l
    float* part = partials + ((i * a.n_heads + h) * splits + split) * (hd + 2);
#pragma unroll
    for (int t = 0; t < kMaxHeadDimPerLane; ++t) {
      const int64_t d = lane + 32 * t;
      if (d < hd) part[d] = o[t];
    }
    if (lane == 0) {
      part[hd] = mm;
      part[hd + 1] = ll;
    }
    return;
  }
  if (a.sinks) {  // one more logit in the denominator only
    const float sink = a.sinks[h], m2 = fmaxf(mm, sink), c = expf(mm - m2);
    ll = ll * c + expf(sink - m2);
#pragma unroll
    for (int t = 0; t < kMaxHeadDimPerLane; ++t) o[t] *= c;
  }
  const float inv = ll > 0.0f ? 1.0f / ll : 0.0f;
  float* oh = out + (i * a.n_heads + h) * hd;
#pragma unroll
  for (int t = 0; t < kMaxHeadDimPerLane; ++t) {
    const int64_t d = lane + 32 * t;
    if (d < hd) oh[d] = o[t] * inv;
  }
}

// Merges the context chunks of one (token, head): one warp.
__global__ void k_attention_combine(const float* partials, int64_t n_heads, int64_t hd, int splits, const float* sinks,
                                    float* out) {
  const int64_t i = blockIdx.x, h = blockIdx.y;
  const int lane = threadIdx.x;
  const float* part = partials + (i * n_heads + h) * splits * (hd + 2);
  float mm = kNoScore;
  for (int s = 0; s < splits; ++s) mm = fmaxf(mm, part[s * (hd + 2) + hd]);
  if (sinks) mm = fmaxf(mm, sinks[h]);
  float ll = sinks ? expf(sinks[h] - mm) : 0.0f;
  for (int s = 0; s < splits; ++s) ll += part[s * (hd + 2) + hd + 1] * expf(part[s * (hd + 2) + hd] - mm);
  const float inv = ll > 0.0f ? 1.0f / ll : 0.0f;
  for (int64_t d = lane; d < hd; d += 32) {
    float o = 0.0f;
    for (int s = 0; s < splits; ++s) o += part[s * (hd + 2) + d] * expf(part[s * (hd + 2) + hd] - mm);
    out[(i * n_heads + h) * hd + d] = o * inv;
  }
}

__global__ void k_select_rows(const float* x, int64_t cols, const int* rows, int64_t m, float* out) {
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < m * cols; t += int64_t(gridDim.x) * blockDim.x)
    out[t] = x[int64_t(rows[t / cols]) * cols + t % cols];
}
// One thread per column walks j in order: the same sums, in the same order, as the host backend.
__global__ void k_scatter_add_rows(const float* src, int64_t m, int64_t cols, const int* rows, const float* scale,
                                   float* dst) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= cols) return;
  for (int64_t j = 0; j < m; ++j) dst[int64_t(rows[j]) * cols + c] += scale[j] * src[j * cols + c];
}
__global__ void k_linear_f32(const float* x, const float* w, int64_t n, int64_t rows, int64_t cols, float* y) {
  const int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (t >= n * rows) return;
  const int64_t i = t / rows, r = t % rows;
  float acc = 0.0f;
  for (int64_t c = 0; c < cols; ++c) acc += x[i * cols + c] * w[r * cols + c];
  y[t] = acc;
}
// One block per row; ties go to the lower index.
__global__ void k_argmax(const float* x, int64_t cols, int* out) {
  const float* r = x + blockIdx.x * cols;
  float best = -FLT_MAX;
  int64_t at = cols;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    if (r[c] > best || (r[c] == best && c < at)) {
      best = r[c];
      at = c;
    }
  __shared__ float sv[kThreads];
  __shared__ int64_t si[kThreads];
  sv[threadIdx.x] = best;
  si[threadIdx.x] = at;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (int(threadIdx.x) < stride) {
      const float ov = sv[threadIdx.x + stride];
      const int64_t oi = si[threadIdx.x + stride];
      if (ov > sv[threadIdx.x] || (ov == sv[threadIdx.x] && oi < si[threadIdx.x])) {
        sv[threadIdx.x] = ov;
        si[threadIdx.x] = oi;
      }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = int(si[0] < cols ? si[0] : 0);
}

// ---- routing: one thread per token (routers are tiny next to the experts) ----
constexpr int kMaxExperts = 1024;
struct Chosen {
  unsigned bits[kMaxExperts / 32];
  __device__ bool has(int e) const { return bits[e >> 5] >> (e & 31) & 1u; }
  __device__ void set(int e) { bits[e >> 5] |= 1u << (e & 31); }
};
// The best not-yet-chosen index of v over [lo, hi) (ties: the lower), marked chosen.
template <typename Value>
__device__ int take_best(const Value& v, int lo, int hi, Chosen& c) {
  int best = -1;
  float bv = 0.0f;
  for (int e = lo; e < hi; ++e) {
    if (c.has(e)) continue;
    const float x = v(e);
    if (best < 0 || x > bv) {
      best = e;
      bv = x;
    }
  }
  if (best >= 0) c.set(best);
  return best;
}

__global__ void k_moe_route(const float* logits, int64_t n, RouteArgs r, const float* correction, int* ids,
                            float* weights) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const int E = r.n_experts, K = r.top_k;
  const float* l = logits + i * E;
  Chosen c{};
  float mx = l[0];
  double sum = 0.0;
  if (r.kind == 0) {
    for (int e = 1; e < E; ++e) mx = fmaxf(mx, l[e]);
    for (int e = 0; e < E; ++e) sum += double(expf(l[e] - mx));
  }
  auto prob = [&](int e) { return float(double(expf(l[e] - mx)) / sum); };
  auto sig = [&](int e) { return 1.0f / (1.0f + expf(-l[e])); };
  auto choice = [&](int e) { return sig(e) + (correction ? correction[e] : 0.0f); };
  if (r.kind == 0) {
    for (int k = 0; k < K; ++k) take_best(prob, 0, E, c);
  } else if (r.kind == 1) {
    for (int k = 0; k < K; ++k) take_best([&](int e) { return l[e]; }, 0, E, c);
  } else {
    const int G = r.n_group, per = E / G;
    Chosen groups{};
    for (int t = 0; t < r.topk_group; ++t) {  // the groups with the best sums of their top-2 choice scores
      int best = -1;
      float bv = 0.0f;
      for (int g = 0; g < G; ++g) {
        if (groups.has(g)) continue;
        Chosen in{};
        float s = 0.0f;
        for (int b = 0; b < min(2, per); ++b) {
          // the b-th best within the group, ties to the lower index
          int at = -1;
          float av = 0.0f;
          for (int e = g * per; e < (g + 1) * per; ++e)
            if (!in.has(e) && (at < 0 || choice(e) > av)) {
              at = e;
              av = choice(e);
            }
          in.set(at);
          s += av;
        }
        if (best < 0 || s > bv) {
          best = g;
          bv = s;
        }
      }
      groups.set(best);
    }
    // experts of other groups score 0 (as the host backend and transformers)
    for (int k = 0; k < K; ++k) take_best([&](int e) { return groups.has(e / per) ? choice(e) : 0.0f; }, 0, E, c);
  }
  int chosen[64];
  int m = 0;
  for (int e = 0; e < E && m < K && m < 64; ++e)
    if (c.has(e)) chosen[m++] = e;  // ascending expert index
  double w[64];
  if (r.kind == 0) {
    for (int k = 0; k < m; ++k) w[k] = prob(chosen[k]);
  } else if (r.kind == 1) {
    float top = l[chosen[0]];
    for (int k = 1; k < m; ++k) top = fmaxf(top, l[chosen[k]]);
    double s = 0.0;
    for (int k = 0; k < m; ++k) s += (w[k] = exp(double(l[chosen[k]] - top)));
    for (int k = 0; k < m; ++k) w[k] /= s;
  } else {
    for (int k = 0; k < m; ++k) w[k] = sig(chosen[k]);
  }
  if (r.norm_topk_prob) {
    double s = r.kind == 2 ? 1e-20 : 0.0;
    for (int k = 0; k < m; ++k) s += w[k];
    for (int k = 0; k < m; ++k) w[k] /= s;
  }
  for (int k = 0; k < m; ++k) {
    ids[i * K + k] = chosen[k];
    weights[i * K + k] = float(w[k] * r.routed_scaling_factor);
  }
}

}  // namespace

void rmsnorm(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* out, cudaStream_t s) {
  if (rows > 0) k_rmsnorm<<<unsigned(rows), kThreads, 0, s>>>(x, w, dim, eps, out);
}
void add(float* x, const float* y, int64_t count, cudaStream_t s) {
  if (count > 0) k_add<<<blocks_for(count), kThreads, 0, s>>>(x, y, count);
}
void add_bias(float* x, const float* b, int64_t rows, int64_t cols, cudaStream_t s) {
  if (rows * cols > 0) k_add_bias<<<blocks_for(rows * cols), kThreads, 0, s>>>(x, b, rows, cols);
}
void swiglu(const float* gate, const float* up, int64_t count, float* out, cudaStream_t s) {
  if (count > 0) k_swiglu<<<blocks_for(count), kThreads, 0, s>>>(gate, up, count, out);
}
void swiglu_oai(const float* gate, const float* up, int64_t count, float alpha, float limit, float* out,
                cudaStream_t s) {
  if (count > 0) k_swiglu_oai<<<blocks_for(count), kThreads, 0, s>>>(gate, up, count, alpha, limit, out);
}
void rope(float* x, int64_t n, int64_t heads, int64_t head_dim, const int* pos, const float* cos, const float* sin,
          int64_t rotary_dim, int64_t max_pos, bool interleaved, cudaStream_t s) {
  const int64_t half = rotary_dim / 2;
  if (n * heads * half > 0)
    k_rope<<<blocks_for(n * heads * half), kThreads, 0, s>>>(x, n, heads, head_dim, pos, cos, sin, half, max_pos,
                                                              interleaved);
}
void kv_store(const float* k, const float* v, int64_t n, const int* slot, const int* pos, CacheDims c, float* k_cache,
              float* v_cache, cudaStream_t s) {
  const int64_t total = n * c.kv_heads * c.head_dim;
  if (total > 0) k_kv_store<<<blocks_for(total), kThreads, 0, s>>>(k, v, n, slot, pos, c, k_cache, v_cache);
}
void attention(const float* q, int64_t n, const int* slot, const int* pos, const float* k_cache, const float* v_cache,
               const AttentionArgs& a, int splits, float* partials, float* out, cudaStream_t s) {
  if (n <= 0 || a.n_heads <= 0) return;
  splits = splits < 1 ? 1 : splits;
  const dim3 grid(unsigned(n), unsigned(a.n_heads), unsigned(splits));
  k_attention<<<grid, 32 * kAttnWarps, 0, s>>>(q, n, slot, pos, k_cache, v_cache, a, splits, partials, out);
  if (splits > 1)
    k_attention_combine<<<dim3(unsigned(n), unsigned(a.n_heads)), 32, 0, s>>>(partials, a.n_heads, a.cache.head_dim,
                                                                            splits, a.sinks, out);
}
void select_rows(const float* x, int64_t cols, const int* rows, int64_t m, float* out, cudaStream_t s) {
  if (m * cols > 0) k_select_rows<<<blocks_for(m * cols), kThreads, 0, s>>>(x, cols, rows, m, out);
}
void scatter_add_rows(const float* src, int64_t m, int64_t cols, const int* rows, const float* scale, float* dst,
                      cudaStream_t s) {
  if (m > 0 && cols > 0) k_scatter_add_rows<<<blocks_for(cols), kThreads, 0, s>>>(src, m, cols, rows, scale, dst);
}
void linear_f32(const float* x, const float* w, int64_t n, int64_t rows, int64_t cols, float* y, cudaStream_t s) {
  if (n * rows > 0) k_linear_f32<<<blocks_for(n * rows), kThreads, 0, s>>>(x, w, n, rows, cols, y);
}
void argmax(const float* x, int64_t rows, int64_t cols, int* out, cudaStream_t s) {
  if (rows > 0) k_argmax<<<unsigned(rows), kThreads, 0, s>>>(x, cols, out);
}
void moe_route(const float* logits, int64_t n, const RouteArgs& r, const float* correction, int* ids, float* weights,
               cudaStream_t s) {
  if (n > 0) k_moe_route<<<blocks_for(n, 64), 64, 0, s>>>(logits, n, r, correction, ids, weights);
}

}  // namespace hpcinfer::cuda
