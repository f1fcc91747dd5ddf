// Element-wise and normalization kernels of the Llama forward pass (f32). Shapes in comments; all row-major.
#pragma once

#include <cstdint>
#include <vector>

namespace hpcinfer::kernels {

// out[dim] = x[dim] / sqrt(mean(x^2) + eps) * weight[dim]   (out may alias x)
void rmsnorm(const float* x, const float* weight, int64_t dim, float eps, float* out);

// Rotary embedding in place on n_heads heads of one token, x[n_heads, head_dim], with the position's table row
// cos/sin [rot_dim / 2]; the first rot_dim values of each head rotate, the rest pass through. Pairs: rotate-half
// (i, i + rot_dim/2) or interleaved (2i, 2i + 1): (a, b) -> (a c - b s, a s + b c).
void rope_rotate(float* x, int n_heads, int64_t head_dim, int64_t rot_dim, const float* cos, const float* sin,
                 bool interleaved);

// out[n] = silu(gate[n]) * up[n]   (out may alias gate)
void silu_mul(const float* gate, const float* up, int64_t n, float* out);

// In place: x[n] = softmax(x[n]) (max-subtracted, f32).
void softmax(float* x, int64_t n);

// Index of the largest value (first one on ties).
int64_t argmax(const float* x, int64_t n);

// One query head against a cached sequence:
//   q[head_dim], keys/values: n_ctx rows with row stride `stride` floats; scores scratch [n_ctx].
//   out[head_dim] = sum_j softmax_j(scale q . k_j) v_j   (scale = 1/sqrt(head_dim) for plain attention)
void attend_one_head(const float* q, const float* keys, const float* values, int64_t n_ctx, int64_t stride,
                     int64_t head_dim, float scale, float* scores, float* out);
// n_q query heads sharing the same keys/values (grouped-query attention), each row read once for up to 4 of them:
//   q[n_q][head_dim], scores scratch [min(n_q, 4)][n_ctx], out[n_q][head_dim]; each head's result is bitwise
//   attend_one_head's. sinks: [n_q] or null: head g's softmax also counts exp(sinks[g]) in its denominator.
void attend_heads(const float* q, int64_t n_q, const float* keys, const float* values, int64_t n_ctx, int64_t stride,
                  int64_t head_dim, float scale, float* scores, float* out, const float* sinks = nullptr);
// In place: x[n] = exp(x - m) / (sum exp(x - m) + exp(sink - m)), m = max(x, sink).
void softmax_with_sink(float* x, int64_t n, float sink);

}  // namespace hpcinfer::kernels
