// `hpcinfer palu compress`: turns a model with gqa attention into its PaLU variant (Chang et al., "Palu: Compressing
// KV-Cache with Low-Rank Projection", ICLR 2025), a Hugging Face directory that loads like any model and whose
// attention is the "palu" block kind (core/model/blocks/attention_palu.cpp).
//
// Per layer and per group of group_size consecutive kv heads, the key and value projections W_g [gs*hd, dim] are
// factored by a truncated SVD of the whitened weight (SVD-LLM's whitening):
//   C = X^T X over the calibration tokens' attention inputs X [N, dim] (rmsnorm(x, attn_norm), f64), C = S S^T
//   (Cholesky, S lower triangular); W_g S = U diag(s) V^T; keep the r largest:
//   up = U_r diag(s_r) [gs*hd, r], down = V_r^T S^-1 [r, dim]; then up down minimises ||(W_g - up down) X^T||_F.
// When C is not positive definite (too few or degenerate calibration tokens) it is damped, C + lambda I with lambda
// = 1e-6 * mean(diag C), then 10x more, until the Cholesky factorisation succeeds (the lambda per layer is recorded);
// whitening "none" uses S = I (plain SVD, no calibration: for random-weight speed models).
// r = ratio * gs*hd rounded to the nearest multiple of rank_multiple (at least one multiple), at most min(gs*hd,
// dim): ratio 1.0 keeps every singular value and the factors reproduce W exactly (up to rounding). Uniform: every
// layer and group gets the same r. The value factors' up-projection is folded into the output projection:
//   wo_latent[:, h*rv:(h+1)*rv] = wo[:, h*hd:(h+1)*hd] up_v(g(h))[rows of kv head h / (heads / kv_heads)]
// Linear algebra: Eigen 3 (Cholesky LLT, BDCSVD, triangular solves).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace hpcinfer::palu {

struct CompressOptions {
  std::string model, format = "auto";  // the source model (any loader's format)
  std::string out;                     // output directory (created; an existing non-empty one is refused)
  double ratio = 0.7;                  // fraction of each group's rank kept, (0, 1]
  int group_size = 4;                  // kv heads per group; divides the model's kv heads
  int rank_multiple = 8;               // ranks are rounded to multiples of this
  std::string whitening = "cholesky";  // cholesky | none
  std::string calib;                   // calibration text file (.bz2 too); required for cholesky
  std::string tokenizer;               // tokenizer of the calibration text; default: the model's own
  int64_t calib_tokens = 4096;         // tokens of it to use
  int64_t calib_skip_tokens = 0;       // start after this many tokens of the file (a range disjoint from evaluation)
  int64_t calib_seq_len = 512;         // tokens per calibration sequence (BOS first)
  std::string dtype = "f32";           // f32 | bf16: dtype of every tensor written
  int threads = 0;
};

struct CompressReport {
  std::vector<int64_t> rank_k, rank_v;  // per layer
  std::vector<double> damping;          // per layer: lambda added to C (0: none needed)
  int64_t calib_tokens_used = 0;
  double kv_bytes_per_token_before = 0, kv_bytes_per_token_after = 0;  // f32 cache, all layers
  double seconds = 0;
};

// Throws std::invalid_argument naming the option for bad options (ratio outside (0, 1], a group size that does not
// divide the kv heads, a calibration file missing or shorter than asked), std::runtime_error for file errors.
// `log` gets progress lines.
CompressReport compress(const CompressOptions& o, const std::function<void(const std::string&)>& log);

// The rank kept of a group of `full` = gs*hd rows with `ratio` (the rule above); `cap` = min(full, dim).
int64_t kept_rank(double ratio, int64_t full, int64_t cap, int rank_multiple);

}  // namespace hpcinfer::palu
