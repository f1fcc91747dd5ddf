// llama2.c checkpoints (karpathy/llama2.c "legacy" export, version 0): 7 x int32 header (dim, hidden_dim, n_layers,
// n_heads, n_kv_heads, vocab_size (negative: the file carries its own classifier wcls), seq_len), then f32 arrays:
//   token_embedding [vocab, dim], rms_att [L, dim], wq [L, n_heads*hs, dim], wk [L, n_kv*hs, dim],
//   wv [L, n_kv*hs, dim], wo [L, dim, n_heads*hs], rms_ffn [L, dim], w1 [L, hidden, dim], w2 [L, dim, hidden],
//   w3 [L, hidden, dim], rms_final [dim], freq_cis_real [seq_len, hs/2], freq_cis_imag [seq_len, hs/2],
//   wcls [vocab, dim] (only when vocab_size < 0).
// RoPE rotates adjacent pairs (interleaved): wq/wk are permuted to rotate-half on first access. The file size must
// match the header exactly. Fixed by the format: norm_eps 1e-5, rope_theta 10000, bos 1, eos 2.
// Tokenizer: tok<vocab>.bin or tokenizer.bin beside the model.
#pragma once

#include <memory>
#include <string>

#include "core/model/model_source.hpp"

namespace hpcinfer {

std::unique_ptr<ModelSource> open_llama2c_model(const std::string& path);

}  // namespace hpcinfer
