// One rank's part of any model the block kinds describe, as its RankPlan says: the packed shards of its layers' blocks
// (and the embedding / final norm / output head on the first / last stage), their KV caches, and the forward pass
// over a ragged batch, all on the rank's backend.
//
// A batch is n tokens from any mix of sequences: token i belongs to KV-cache slot slot[i] at position pos[i].
// Prefill (many tokens of one sequence) and decode (one token per sequence) are the same call. Within a layer the
// keys/values of every token are written before attention runs, so causal attention inside a prefill chunk works.
// The hidden states [n, dim] live in the backend's memory (hidden()): the pipeline sends and receives them there.
// Communication inside the pass (tensor parallelism, a vocab-split embedding or head) is whatever the plan's
// collective steps say at the blocks' anchors (core/runtime/anchor_steps.hpp); the stage names no transport.
// Threading: one caller thread; ops run on the backend.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/model/blocks/block.hpp"
#include "core/model/model_source.hpp"
#include "core/runtime/anchor_steps.hpp"
#include "hpcinfer/communicator.hpp"
#include "hpcinfer/strategy.hpp"
#include "hpcinfer/weight_format.hpp"

namespace hpcinfer {

struct TokenBatch {
  std::vector<int> tokens;  // [n] input ids (used by the first stage)
  std::vector<int> slot;    // [n] KV-cache slot of each token's sequence
  std::vector<int> pos;     // [n] position of each token in its sequence
  int size() const { return int(slot.size()); }
};

class ModelStage {
 public:
  // Packs every tensor the plan names (reading only those). n_slots sequences of up to max_ctx tokens.
  // groups: the communicator of each CommGroup in the plan.
  // weights_cache: the packed-weight cache's directory (core/runtime/packed_cache.hpp); "" = pack every matrix.
  ModelStage(const ModelSource& src, const RankPlan& plan, const WeightFormat& fmt, Backend& be,
             std::map<std::string, Communicator*> groups, int n_slots, int max_ctx, const std::string& weights_cache = "");
  ~ModelStage();

  const RankPlan& plan() const { return plan_; }
  const ModelDesc& desc() const { return m_; }
  Backend& backend() { return be_; }
  int max_ctx() const { return max_ctx_; }
  int slots() const { return n_slots_; }
  size_t weight_bytes() const { return weight_bytes_; }
  // Of the construction's time, the seconds spent bringing matrices' file bytes into memory (the rest is packing).
  double weight_read_s() const { return weight_read_s_; }
  // The packed-weight cache on this load: "off", "hit" (every matrix mapped from `weight_cache_file`), "partial" or
  // "miss" (packed, and the file written in weight_cache_write_s, part of the packing time).
  const std::string& weight_cache() const { return weight_cache_; }
  const std::string& weight_cache_file() const { return weight_cache_file_; }
  double weight_cache_write_s() const { return weight_cache_write_s_; }
  // Bytes of weights one decoded token streams through: every matrix but the embedding table (of which a token
  // reads one row), unless the head is the tied embedding itself.
  size_t streamed_weight_bytes() const;
  size_t kv_bytes() const;
  // Seconds spent in the plan's collectives so far (0 without any): communication inside compute.
  double allreduce_s() const { return anchors_->seconds(); }

  // The batch's hidden states [n, dim] in backend memory (grown to n; contents kept only while n fits).
  float* hidden(int64_t n);
  // First stage: hidden[n, dim] = embedding rows of b.tokens.
  void embed(const TokenBatch& b);
  // hidden[n, dim] in place through layers [layer_begin, layer_end).
  void forward_layers(const TokenBatch& b);
  // Calibration (core/palu): `tap` sees each local layer's input x[n, dim] (backend memory) before its attention
  // block, in every later forward_layers (which then never replays recorded graphs). An empty tap removes it.
  using LayerTap = std::function<void(int layer, const float* x, int64_t n)>;
  void set_layer_tap(LayerTap tap) { tap_ = std::move(tap); }
  // Last stage: logits[rows.size(), vocab] (HOST memory) for the listed rows of hidden.
  void head(const std::vector<int>& rows, float* logits);
  // Last stage, greedy: ids[rows.size()] (HOST memory), the argmax of each row's logits taken on the backend (only
  // the ids cross to the host; the same ids as the host sampler's greedy choice: first index on ties).
  void head_argmax(const std::vector<int>& rows, int* ids);
  // Last stage, temperature sampling: Backend::sampling_candidates of each row's logits (HOST outputs).
  void head_candidates(const std::vector<int>& rows, const float* temps, int64_t count, float* max, double* sum,
                       float* cand_logits, int* cand_ids);

 private:
  class Builder;
  const int* upload_ints(size_t slot, const std::vector<int>& v);
  const float* head_on_device(const std::vector<int>& rows);  // [rows, vocab] logits in backend memory

  ModelDesc m_;
  RankPlan plan_;
  Backend& be_;
  int n_slots_, max_ctx_;
  std::unique_ptr<AnchorSteps> anchors_;
  std::unique_ptr<Workspace> ws_;
  std::unique_ptr<PackedMatrix> embedding_;  // [vocab shard, dim] on the first stage
  std::unique_ptr<PackedMatrix> output_;     // [vocab shard, dim] on the last stage (null: the tied embedding)
  int64_t embed_row0_ = 0;                   // first vocab row of the embedding shard
  DeviceBuffer final_norm_;                  // [dim]
  std::vector<std::unique_ptr<Block>> blocks_;  // attention, ffn, attention, ffn, ... of the local layers
  DeviceBuffer ids_out_;                        // head_argmax's ids
  double weight_read_s_ = 0;
  std::string weight_cache_ = "off", weight_cache_file_;
  double weight_cache_write_s_ = 0;
  bool recordable_ = false;                     // decode steps may be replayed as device graphs
  LayerTap tap_;
  std::vector<std::string> range_names_;        // "layers.<i>.attn" / ".ffn" of each block, for profiler ranges
  std::map<std::string, std::pair<DeviceBuffer, DeviceBuffer>> rope_;  // shared RoPE tables: cos, sin
  int embed_anchor_ = -1, head_anchor_ = -1;
  size_t weight_bytes_ = 0;
  DeviceBuffer hidden_, ints_[4], head_x_, head_logits_;  // ints_: ids, slots, positions, head rows
};

}  // namespace hpcinfer
