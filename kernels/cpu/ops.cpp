#include "kernels/cpu/ops.hpp"

#include "kernels/cpu/target_clones.hpp"

#include <cmath>
#include <cstring>

namespace hpcinfer::kernels {

void rmsnorm(const float* x, const float* weight, int64_t dim, float eps, float* out) {
  double ss = 0.0;
  for (int64_t i = 0; i < dim; ++i) ss += double(x[i]) * double(x[i]);
  const float scale = float(1.0 / std::sqrt(ss / double(dim) + double(eps)));
  for (int64_t i = 0; i < dim; ++i) out[i] = x[i] * scale * weight[i];
}

void rope_rotate(float* x, int n_heads, int64_t head_dim, int64_t rot_dim, const float* c, const float* s,
                 bool interleaved) {
  const int64_t half = rot_dim / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    if (interleaved) {
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[2 * i], b = v[2 * i + 1];
        v[2 * i] = a * c[i] - b * s[i];
        v[2 * i + 1] = a * s[i] + b * c[i];
      }
    } else {
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * c[i] - b * s[i];
        v[i + half] = a * s[i] + b * c[i];
      }
    }
  }
}

void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void softmax(float* x, int64_t n) {
  float mx = x[0];
  for (int64_t i = 1; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = float(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void softmax_with_sink(float* x, int64_t n, float sink) {
  float mx = sink;
  for (int64_t i = 0; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  double sum = std::exp(double(sink) - mx);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = float(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

int64_t argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

namespace {
typedef float v8f __attribute__((vector_size(32)));  // 8 lanes: native on AVX2, half a register on AVX-512

inline __attribute__((always_inline)) v8f load8(const float* p) {
  v8f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
// q . k in a fixed order: 8 lane sums over d ascending, then pairwise halves, then the scalar tail.
inline __attribute__((always_inline)) float finish_dot(v8f acc, const float* q, const float* k, int64_t d0,
                                                       int64_t head_dim) {
  float s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
  for (int64_t d = d0; d < head_dim; ++d) s += q[d] * k[d];
  return s;
}
}  // namespace

// NQ query heads against the same keys/values. Scores: four keys at a time per head (independent FMA chains), each
// score's arithmetic the same whatever its neighbours. Output: 32 values of every head kept in registers while the
// value rows stream past, out[d] = sum over keys ascending of p_j * v_j[d] (one multiply-add per key): the
// arithmetic does not depend on NQ, so grouped and one-head calls agree bitwise.
template <int NQ>
inline __attribute__((always_inline)) void attend_group(const float* q, const float* keys, const float* values,
                                                        int64_t n_ctx, int64_t stride, int64_t head_dim,
                                                        float scale, float* scores, float* out, const float* sinks) {
  const int64_t dv = head_dim / 8 * 8;
  int64_t j = 0;
  for (; j + 4 <= n_ctx; j += 4) {
    const float* k0 = keys + j * stride;
    for (int g = 0; g < NQ; ++g) {
      const float* qg = q + g * head_dim;
      v8f a0{}, a1{}, a2{}, a3{};
      for (int64_t d = 0; d < dv; d += 8) {
        const v8f qv = load8(qg + d);
        a0 += qv * load8(k0 + d);
        a1 += qv * load8(k0 + stride + d);
        a2 += qv * load8(k0 + 2 * stride + d);
        a3 += qv * load8(k0 + 3 * stride + d);
      }
      float* sg = scores + g * n_ctx + j;
      sg[0] = finish_dot(a0, qg, k0, dv, head_dim) * scale;
      sg[1] = finish_dot(a1, qg, k0 + stride, dv, head_dim) * scale;
      sg[2] = finish_dot(a2, qg, k0 + 2 * stride, dv, head_dim) * scale;
      sg[3] = finish_dot(a3, qg, k0 + 3 * stride, dv, head_dim) * scale;
    }
  }
  for (; j < n_ctx; ++j) {
    const float* k = keys + j * stride;
    for (int g = 0; g < NQ; ++g) {
      const float* qg = q + g * head_dim;
      v8f a{};
      for (int64_t d = 0; d < dv; d += 8) a += load8(qg + d) * load8(k + d);
      scores[g * n_ctx + j] = finish_dot(a, qg, k, dv, head_dim) * scale;
    }
  }
  for (int g = 0; g < NQ; ++g) {
    if (sinks) softmax_with_sink(scores + g * n_ctx, n_ctx, sinks[g]);
    else softmax(scores + g * n_ctx, n_ctx);
  }
  constexpr int64_t kBlock = 32;  // output values per head held in registers: 4 x 8 lanes
  int64_t d0 = 0;
  for (; d0 + kBlock <= head_dim; d0 += kBlock) {
    v8f acc[NQ][4];
    for (int g = 0; g < NQ; ++g)
      for (int t = 0; t < 4; ++t) acc[g][t] = v8f{};
    for (int64_t jj = 0; jj < n_ctx; ++jj) {
      const float* v = values + jj * stride + d0;
      const v8f v0 = load8(v), v1 = load8(v + 8), v2 = load8(v + 16), v3 = load8(v + 24);
      for (int g = 0; g < NQ; ++g) {
        const float p = scores[g * n_ctx + jj];
        acc[g][0] += p * v0, acc[g][1] += p * v1, acc[g][2] += p * v2, acc[g][3] += p * v3;
      }
    }
    for (int g = 0; g < NQ; ++g)
      for (int t = 0; t < 4; ++t) std::memcpy(out + g * head_dim + d0 + 8 * t, &acc[g][t], sizeof(v8f));
  }
  for (int64_t d = d0; d < head_dim; ++d)  // head sizes that are not a multiple of 32: the same sums, one by one
    for (int g = 0; g < NQ; ++g) {
      float o = 0.0f;
      for (int64_t jj = 0; jj < n_ctx; ++jj) o += scores[g * n_ctx + jj] * values[jj * stride + d];
      out[g * head_dim + d] = o;
    }
}

HPCINFER_TARGET_CLONES("arch=x86-64-v4", "arch=x86-64-v3", "default")
void attend_heads(const float* q, int64_t n_q, const float* keys, const float* values, int64_t n_ctx, int64_t stride,
                  int64_t head_dim, float scale, float* scores, float* out, const float* sinks) {
  // Up to 4 heads share each loaded key and value; more are done 4 at a time.
  for (int64_t g = 0; g < n_q; g += 4) {
    const float* qg = q + g * head_dim;
    float* og = out + g * head_dim;
    switch (std::min<int64_t>(4, n_q - g)) {
      case 1: attend_group<1>(qg, keys, values, n_ctx, stride, head_dim, scale, scores, og, sinks ? sinks + g : nullptr); break;
      case 2: attend_group<2>(qg, keys, values, n_ctx, stride, head_dim, scale, scores, og, sinks ? sinks + g : nullptr); break;
      case 3: attend_group<3>(qg, keys, values, n_ctx, stride, head_dim, scale, scores, og, sinks ? sinks + g : nullptr); break;
      default: attend_group<4>(qg, keys, values, n_ctx, stride, head_dim, scale, scores, og, sinks ? sinks + g : nullptr); break;
    }
  }
}

void attend_one_head(const float* q, const float* keys, const float* values, int64_t n_ctx, int64_t stride,
                     int64_t head_dim, float scale, float* scores, float* out) {
  attend_heads(q, 1, keys, values, n_ctx, stride, head_dim, scale, scores, out);
}

}  // namespace hpcinfer::kernels
