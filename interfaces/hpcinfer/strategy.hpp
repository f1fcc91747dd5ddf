// Strategy (parallelism) contract: from a model description and a world, produce each rank's plan as data.
//
// The plan says which layers a rank runs, which logical shard of every weight it holds, and where it communicates.
// The core executes the plan (core/runtime); a strategy never touches weights or communicators, so a plan can be
// printed (`hpcinfer plan --show CONFIG`) and tested without loading anything.
// Threading: plan() is a pure function of its arguments; safe to call concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hpcinfer/model.hpp"
#include "hpcinfer/tensor.hpp"

namespace hpcinfer {

// TensorRT-LLM-style layout: tp_rank = rank % tp, pp_rank = rank / tp.
struct World {
  int tp = 1;
  int pp = 1;
  int rank = 0;
  int size() const { return tp * pp; }
  int tp_rank() const { return rank % tp; }
  int pp_rank() const { return rank / tp; }
  bool is_first_stage() const { return pp_rank() == 0; }
  bool is_last_stage() const { return pp_rank() == pp - 1; }
  int rank_of(int tp_rank, int pp_rank) const { return pp_rank * tp + tp_rank; }
};

struct StrategyOptions {
  std::vector<int> layer_split;  // explicit layers per stage (sums to n_layers); empty = balanced by cost
  bool replicate_kv_heads = false;  // tp_pp: allow tp > n_kv_heads by replicating KV heads
};

// One weight this rank holds: rows/cols are logical ranges of the full tensor (see model.hpp for shapes).
struct WeightShard {
  std::string tensor;  // canonical name
  Range rows;
  Range cols;
};

// Where this rank talks to others, in execution order within one forward pass.
struct CommStep {
  enum class Kind { recv_activations, send_activations, allreduce_sum, send_tokens, recv_tokens };
  Kind kind;
  std::string where;      // e.g. "layers.3.attn_out" or "stage input"
  std::vector<int> peers; // ranks involved (the tp group for allreduce)
};


struct RankPlan {
  World world;
  int layer_begin = 0;  // [layer_begin, layer_end) run on this rank
  int layer_end = 0;
  bool has_embedding = false;  // first stage
  bool has_head = false;       // last stage: final norm + output head + sampling
  // Tensor-parallel slice of each layer (whole ranges when tp == 1):
  Range q_heads;    // query heads of this rank
  Range kv_heads;   // key/value heads of this rank
  Range ffn;        // slice of hidden_dim
  bool head_vocab_sharded = false;  // output head split by vocab rows across the tp group
  Range vocab;                      // rows of the output head held here
  std::vector<WeightShard> shards;
  std::vector<CommStep> steps;
  int prev_stage_rank = -1;  // same tp_rank, previous stage (-1 on the first)
  int next_stage_rank = -1;  // same tp_rank, next stage (-1 on the last)
  std::vector<int> tp_group; // ranks of this stage
};

class Strategy {
 public:
  virtual ~Strategy() = default;
  virtual std::string name() const = 0;
  // Throws std::invalid_argument with a sentence a user can act on (e.g. the tp values that would work).
  virtual RankPlan plan(const ModelDesc& model, const World& world, const StrategyOptions& options) const = 0;
};

inline const char* comm_step_name(CommStep::Kind k) {
  switch (k) {
    case CommStep::Kind::recv_activations: return "recv_activations";
    case CommStep::Kind::send_activations: return "send_activations";
    case CommStep::Kind::allreduce_sum: return "allreduce_sum";
    case CommStep::Kind::send_tokens: return "send_tokens";
    case CommStep::Kind::recv_tokens: return "recv_tokens";
  }
  return "?";
}

}  // namespace hpcinfer
