// CUDA kernels of the cuda backend (plugins/backend_cuda): one launcher per Backend op, same shapes and meaning as
// interfaces/hpcinfer/backend.hpp (f32 activations, row-major, int32 index arrays, all pointers device memory).
// Every launcher enqueues on `stream` and returns at once; it checks nothing on the device: indices are checked by
// the caller on the host (ModelStage checks slots and positions before they are uploaded), and a kernel skips a
// token whose slot or position is out of range instead of writing outside its buffers.
// Numerics: f32 throughout (sums in f32 in a fixed tree order), so results differ from the CPU kernels in the last
// bits (the conformance test's per-op tolerances, tests/test_cuda_backend.cpp).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace hpcinfer::cuda {

void rmsnorm(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* out, cudaStream_t s);
void add(float* x, const float* y, int64_t count, cudaStream_t s);
void add_bias(float* x, const float* b, int64_t rows, int64_t cols, cudaStream_t s);
void swiglu(const float* gate, const float* up, int64_t count, float* out, cudaStream_t s);
void swiglu_oai(const float* gate, const float* up, int64_t count, float alpha, float limit, float* out,
                cudaStream_t s);
// x[n, heads, head_dim] in place; cos/sin [max_pos, rotary_dim / 2].
void rope(float* x, int64_t n, int64_t heads, int64_t head_dim, const int* pos, const float* cos, const float* sin,
          int64_t rotary_dim, int64_t max_pos, bool interleaved, cudaStream_t s);
struct CacheDims {
  int64_t slots, kv_heads, max_ctx, head_dim;
};
void kv_store(const float* k, const float* v, int64_t n, const int* slot, const int* pos, CacheDims c, float* k_cache,
              float* v_cache, cudaStream_t s);
struct AttentionArgs {
  int64_t n_heads, q_head_begin, kv_head_begin, group, window;
  float scale;
  const float* sinks;  // [n_heads] or null
  CacheDims cache;
};
// Causal attention over the cache, split over `splits` chunks of the context per (token, head) when splits > 1
// (flash-decoding: partial softmax sums in `partials` [n, n_heads, splits, head_dim + 2], combined after).
void attention(const float* q, int64_t n, const int* slot, const int* pos, const float* k_cache, const float* v_cache,
               const AttentionArgs& a, int splits, float* partials, float* out, cudaStream_t s);
void select_rows(const float* x, int64_t cols, const int* rows, int64_t m, float* out, cudaStream_t s);
void scatter_add_rows(const float* src, int64_t m, int64_t cols, const int* rows, const float* scale, float* dst,
                      cudaStream_t s);
void linear_f32(const float* x, const float* w, int64_t n, int64_t rows, int64_t cols, float* y, cudaStream_t s);
void argmax(const float* x, int64_t rows, int64_t cols, int* out, cudaStream_t s);
// kind: 0 softmax_topk, 1 topk_softmax, 2 sigmoid_group (RouterSpec in interfaces/hpcinfer/model.hpp); at most 1024
// experts.
struct RouteArgs {
  int kind, n_experts, top_k, n_group, topk_group;
  bool norm_topk_prob;
  float routed_scaling_factor;
};
void moe_route(const float* logits, int64_t n, const RouteArgs& r, const float* correction, int* ids, float* weights,
               cudaStream_t s);

// Per row r of logits[rows, vocab] at temperature temps[r] (device array): max[r], sum[r] = sum of
// exp((l - max) / T) in f64, and the `count` largest logits and their ids (ties at the cut: lower ids first) in
// cand_logits / cand_ids [rows, count] (Backend::sampling_candidates).
void sampling_candidates(const float* logits, int64_t rows, int64_t vocab, const float* temps, int64_t count,
                         float* max, double* sum, float* cand_logits, int* cand_ids, cudaStream_t s);

// ---- matmul helpers (the device matmul table, interfaces/hpcinfer/device_matmul.hpp) ----
// y[n, rows] = x[n, cols] W^T for small n (decode): W streamed once, dequantized in registers. n <= kGemvMaxTokens.
inline constexpr int64_t kGemvMaxTokens = 8;
void gemv_f32(const float* w, int64_t rows, int64_t cols, int64_t ld, const float* x, int64_t n, float* y,
              cudaStream_t s);
void gemv_bf16(const uint16_t* w, int64_t rows, int64_t cols, int64_t ld, const float* x, int64_t n, float* y,
               cudaStream_t s);
void gemv_int8(const int8_t* q, const float* scales, int64_t rows, int64_t cols, int64_t ld, int64_t group,
               const float* x, int64_t n, float* y, cudaStream_t s);
// out[rows, ld] bf16 = x[rows, cols] rounded to bf16 (zeros in [cols, ld)).
void f32_to_bf16(const float* x, int64_t rows, int64_t cols, int64_t ld, uint16_t* out, cudaStream_t s);
// out[rows, ld] bf16 = Q * S (the int8 layout dequantized, for the prefill GEMM).
void int8_to_bf16(const int8_t* q, const float* scales, int64_t rows, int64_t ld, int64_t group, uint16_t* out,
                  cudaStream_t s);
// out[i, cols] = f32 row (ids[i] - offset) of a [rows, ld] matrix of `type` (0 f32, 1 bf16, 2 int8), zeros outside.
void gather_rows(int type, const void* w, const float* scales, int64_t rows, int64_t cols, int64_t ld, int64_t group,
                 const int* ids, int64_t n, int64_t offset, float* out, cudaStream_t s);

}  // namespace hpcinfer::cuda
