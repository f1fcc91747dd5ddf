// One rank's part of a Llama-family model, as its RankPlan says: the packed weights of its layers (and of the
// embedding / output head on the first / last stage), their KV cache, and the forward pass over a ragged batch.
//
// A batch is n tokens from any mix of sequences: token i belongs to KV-cache slot slot[i] at position pos[i].
// Prefill (many tokens of one sequence) and decode (one token per sequence) are the same call. Within a layer the
// keys/values of every token are written before attention runs, so causal attention inside a prefill chunk works.
// Threading: one caller thread; kernels run on the Executor. Tensor parallelism: the partial outputs of wo and
// w_down are summed over `tp_comm` (two all-reduces per layer).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/model/model_source.hpp"
#include "hpcinfer/communicator.hpp"
#include "hpcinfer/strategy.hpp"
#include "hpcinfer/weight_format.hpp"
#include "kernels/cpu/ops.hpp"

namespace hpcinfer {

struct TokenBatch {
  std::vector<int> tokens;  // [n] input ids (used by the first stage)
  std::vector<int> slot;    // [n] KV-cache slot of each token's sequence
  std::vector<int> pos;     // [n] position of each token in its sequence
  int size() const { return int(slot.size()); }
};

class LlamaStage {
 public:
  // Packs every weight the plan names (reading only those tensors). n_slots sequences of up to max_ctx tokens.
  LlamaStage(const ModelSource& src, const RankPlan& plan, const WeightFormat& fmt, Executor& ex,
             Communicator* tp_comm, int n_slots, int max_ctx);

  const RankPlan& plan() const { return plan_; }
  const ModelDesc& desc() const { return m_; }
  int max_ctx() const { return max_ctx_; }
  size_t weight_bytes() const { return weight_bytes_; }
  // Bytes of weights one decoded token streams through: every matrix but the embedding table (of which a token
  // reads one row), unless the head is the tied embedding itself.
  size_t streamed_weight_bytes() const {
    const bool tied_head = plan_.has_head && !output_;
    return weight_bytes_ - (embedding_ && !tied_head ? embedding_->bytes() : 0);
  }
  // Seconds spent in the tp all-reduces so far (0 without tensor parallelism): the communication inside compute.
  double allreduce_s() const { return allreduce_s_; }
  size_t kv_bytes() const { return kv_k_.size() * (kv_k_.empty() ? 0 : kv_k_[0].size()) * 2 * sizeof(float); }

  // First stage: x[n, dim] = embedding rows of tokens[n].
  void embed(const std::vector<int>& tokens, float* x) const;
  // x[n, dim] in, x[n, dim] out: runs layers [layer_begin, layer_end).
  void forward_layers(float* x, const TokenBatch& b);
  // Last stage: logits[rows.size(), vocab] for the listed rows of x[n, dim].
  void head(const float* x, const std::vector<int>& rows, float* logits);

 private:
  struct Layer {
    std::vector<float> attn_norm, ffn_norm;  // [dim]
    std::vector<float> bq, bk, bv;           // [q_local], [kv_local] (qkv_bias only)
    std::unique_ptr<PackedMatrix> wq, wk, wv;  // [q_local, dim], [kv_local, dim] x2
    std::unique_ptr<PackedMatrix> wo;          // [dim, q_local]
    std::unique_ptr<PackedMatrix> w_gate, w_up;  // [ffn_local, dim]
    std::unique_ptr<PackedMatrix> w_down;        // [dim, ffn_local]
  };
  std::unique_ptr<PackedMatrix> pack(const ModelSource& src, const WeightShard& s, const WeightFormat& fmt);
  std::vector<float> vector_of(const ModelSource& src, const std::string& name, Range cols) const;
  void attention(int li, const float* q, float* out, const TokenBatch& b);
  void allreduce(float* data, size_t count);

  ModelDesc m_;
  RankPlan plan_;
  Executor& ex_;
  Communicator* tp_comm_;
  int n_slots_, max_ctx_;
  int64_t q_local_, kv_local_, ffn_local_;  // sizes of this rank's slices (in values, not heads)
  std::vector<Layer> layers_;
  std::unique_ptr<PackedMatrix> embedding_;  // [vocab, dim] on the first stage
  std::unique_ptr<PackedMatrix> output_;     // [vocab_local, dim] on the last stage
  std::vector<float> final_norm_;            // [dim]
  kernels::RopeTable rope_;
  // per local layer: [n_slots, kv_heads_local, max_ctx, head_dim]: one head's cached rows are contiguous, so
  // attention streams them (with the heads interleaved per position, 256-byte rows 1 KiB apart, it was latency-bound).
  std::vector<std::vector<float>> kv_k_, kv_v_;
  // Offset (floats) of (slot, local kv head, position) in a layer's cache.
  size_t kv_row(int slot, int kv_head, int pos) const {
    return ((size_t(slot) * size_t(plan_.kv_heads.size()) + size_t(kv_head)) * size_t(max_ctx_) + size_t(pos)) *
           size_t(m_.head_dim);
  }
  size_t weight_bytes_ = 0;
  double allreduce_s_ = 0;
  // Scratch, grown to the largest batch seen.
  std::vector<float> xb_, q_, k_, v_, att_, proj_, gate_, up_;
};

}  // namespace hpcinfer
