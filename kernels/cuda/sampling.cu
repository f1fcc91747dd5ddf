// Sampling candidates on the device (Backend::sampling_candidates): per row, the max, the f64 sum of
// exp((l - max) / T), and the `count` largest logits with their ids, found by a radix select on the logits' order-
// preserving 32-bit keys (4 passes of 8 bits) and collected with the ties at the cut taken in ascending id order.
#include <cfloat>

#include "kernels/cuda/ops.hpp"

namespace hpcinfer::cuda {
namespace {

constexpr int kThreads = 1024;

__device__ __forceinline__ uint32_t order_key(float f) {  // larger float -> larger key
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__global__ void k_candidates(const float* logits, int64_t vocab, const float* temps, int64_t count, float* max_out,
                             double* sum_out, float* cand_logits, int* cand_ids) {
  const int64_t r = blockIdx.x;
  const float* l = logits + r * vocab;
  const float T = temps[r];
  __shared__ float s_max[kThreads / 32];
  __shared__ double s_sum[kThreads / 32];
  __shared__ uint32_t hist[256];
  __shared__ uint32_t s_prefix, s_remaining, s_taken, s_greater;
  __shared__ uint32_t s_warp_eq[kThreads / 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;

  // 1. max
  float mx = -FLT_MAX;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) mx = fmaxf(mx, l[i]);
  for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  if (lane == 0) s_max[warp] = mx;
  __syncthreads();
  mx = s_max[0];
  for (int w = 1; w < warps; ++w) mx = fmaxf(mx, s_max[w]);
  // 2. sum of weights (f32 weights, f64 sum)
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) sum += double(expf((l[i] - mx) / T));
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (lane == 0) s_sum[warp] = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    double t = 0.0;
    for (int w = 0; w < warps; ++w) t += s_sum[w];
    max_out[r] = mx;
    sum_out[r] = t;
    s_prefix = 0;
    s_remaining = uint32_t(count);
  }
  // 3. radix select: the key of the count-th largest logit, and how many of that key are wanted
  for (int pass = 0; pass < 4; ++pass) {
    const int shift = 24 - 8 * pass;
    for (int b = threadIdx.x; b < 256; b += blockDim.x) hist[b] = 0;
    __syncthreads();
    const uint32_t prefix = s_prefix;
    const uint32_t high_mask = pass == 0 ? 0u : (0xffffffffu << (shift + 8));
    for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
      const uint32_t k = order_key(l[i]);
      if ((k & high_mask) == (prefix & high_mask)) atomicAdd(&hist[(k >> shift) & 0xffu], 1u);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      uint32_t need = s_remaining, above = 0;
      int b = 255;
      for (; b > 0; --b) {
        if (above + hist[b] >= need) break;
        above += hist[b];
      }
      s_prefix = prefix | (uint32_t(b) << shift);
      s_remaining = need - above;
    }
    __syncthreads();
  }
  const uint32_t cut = s_prefix, wanted_equal = s_remaining;
  if (threadIdx.x == 0) {
    s_greater = 0;
    s_taken = 0;
  }
  __syncthreads();
  // 4a. every key above the cut (count - wanted_equal of them), any order
  float* out_l = cand_logits + r * count;
  int* out_i = cand_ids + r * count;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    const uint32_t k = order_key(l[i]);
    if (k > cut) {
      const uint32_t at = atomicAdd(&s_greater, 1u);
      if (at < uint32_t(count)) {
        out_l[at] = l[i];
        out_i[at] = int(i);
      }
    }
  }
  __syncthreads();
  const uint32_t base = s_greater;
  // 4b. the first `wanted_equal` keys equal to the cut, in ascending id order (a block-wide ordered scan per chunk)
  for (int64_t c0 = 0; c0 < vocab; c0 += blockDim.x) {
    if (s_taken >= wanted_equal) break;  // uniform: read after the barrier below
    const int64_t i = c0 + threadIdx.x;
    const bool eq = i < vocab && order_key(l[i]) == cut;
    const uint32_t ballot = __ballot_sync(0xffffffffu, eq);
    if (lane == 0) s_warp_eq[warp] = __popc(ballot);
    __syncthreads();
    uint32_t before = s_taken;
    for (int w = 0; w < warp; ++w) before += s_warp_eq[w];
    before += __popc(ballot & ((1u << lane) - 1u));
    if (eq && before < wanted_equal && base + before < uint32_t(count)) {
      out_l[base + before] = l[i];
      out_i[base + before] = int(i);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      uint32_t t = 0;
      for (int w = 0; w < warps; ++w) t += s_warp_eq[w];
      s_taken += t;
    }
    __syncthreads();
  }
}

}  // namespace

void sampling_candidates(const float* logits, int64_t rows, int64_t vocab, const float* temps, int64_t count,
                         float* max, double* sum, float* cand_logits, int* cand_ids, cudaStream_t s) {
  if (rows > 0) k_candidates<<<unsigned(rows), kThreads, 0, s>>>(logits, vocab, temps, count, max, sum, cand_logits, cand_ids);
}

}  // namespace hpcinfer::cuda
