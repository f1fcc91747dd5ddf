// Strategy (parallelism) contract: from the tensors a model declares and a world, produce each rank's plan as data.
//
// A strategy never sees the architecture: it sees a ModelLayout, the logical tensors the block kinds declare (with
// the rule by which tensor parallelism may cut each) and the anchors (named points of the forward pass where partial
// results of a cut must be combined). From these it decides which layers a rank runs, which shard of every tensor it
// holds, which communicator groups it joins and which communication step runs at which anchor. The core executes
// exactly that plan (core/runtime): the pipeline engine runs the point-to-point steps, the stage runs the collective
// steps at their anchors. So a plan can be printed (`hpcinfer plan --show CONFIG`) and tested without loading anything,
// and a new step kind or a new split unit needs no engine change beyond its executor.
// Threading: plan() is a pure function of its arguments; safe to call concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hpcinfer/tensor.hpp"

namespace hpcinfer {

// How tensor parallelism may cut a tensor, declared by the block kind that owns it.
struct ShardRule {
  enum class Axis : uint32_t { none, rows, cols };
  Axis axis = Axis::none;  // none: every rank that runs it holds it whole
  std::string unit;        // what a cut counts along `axis`: "q_head", "kv_head", "ffn", "vocab", ...
  int64_t unit_size = 1;   // values per unit along the axis (head_dim for heads, 1 for FFN rows and vocab rows)
};

struct LogicalTensor {
  std::string name;  // canonical name (model.hpp), e.g. "layers.3.wq"
  int layer = -1;    // its layer; -1 for the model-level tok_embeddings, norm, output
  int64_t rows = 0;  // logical shape [rows, cols]; vectors are [1, n]
  int64_t cols = 0;
  ShardRule shard;
  // >= 0: the whole tensor belongs to unit number select_index of select_unit (e.g. expert 5 of "expert"); a rank
  // holds it only when the strategy gives it that unit (expert parallelism), and then cut by `shard` as usual.
  std::string select_unit;
  int64_t select_index = -1;
  bool f32 = false;  // kept as plain f32 whatever the weights plugin (small matrices routing depends on: routers)
  bool is_vector() const { return rows == 1; }
};

// A point of the forward pass where ranks that hold different units of `units` have partial results to combine.
struct AnchorDecl {
  enum class Combine : uint32_t {
    sum,          // each rank holds a partial sum of the whole [rows, cols] (a row-parallel matmul's output)
    concat_cols,  // each rank holds its units' columns of [rows, all units] (a column-parallel output)
    route,        // tokens may be sent to the ranks holding the units they need and answered (expert dispatch)
    concat_rows,  // after routing, each rank holds the finished rows of its share of the tokens
  };
  std::string name;  // e.g. "layers.3.attn.out", "embed.out", "head.logits"
  int layer = -1;
  Combine combine = Combine::sum;
  std::vector<std::string> units;  // a split of any of these leaves partial results here (concat_cols: one unit)
};

// What a strategy sees of a model.
struct ModelLayout {
  int n_layers = 0;
  std::vector<LogicalTensor> tensors;  // every tensor: tok_embeddings, each layer's, norm, output
  std::vector<AnchorDecl> anchors;
};

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
  std::vector<int> layer_split;     // explicit layers per stage (sums to n_layers); empty = balanced by cost
  bool replicate_kv_heads = false;  // tp_pp: allow tp > n_kv_heads by replicating KV heads
  bool vocab_parallel = true;       // tp_pp: embedding and output head split by vocabulary rows across tp ranks
  bool expert_parallel = false;     // tp_pp: the tp ranks split the experts (whole) instead of slicing every expert
  bool moe_alltoall = false;        // tp_pp with expert_parallel: all-to-all dispatch/combine instead of all-reduce
};

// One tensor this rank holds: rows/cols are logical ranges of the full tensor.
struct WeightShard {
  std::string tensor;  // canonical name
  Range rows;
  Range cols;
};

// A communicator this rank joins besides the world's: every rank of `ranks` (world ranks, in group-rank order)
// creates it at the same point. Plans list a rank's groups in an order every rank agrees on (one per axis).
struct CommGroup {
  std::string name;  // unique in the job, e.g. "tp.stage0"
  std::vector<int> ranks;
};

// One communication step, run at its anchor during every forward pass.
struct CommStep {
  enum class Kind : uint32_t {
    recv_activations,  // anchor "stage.input": the previous stage's hidden states (and batch) from peers[0]
    send_activations,  // anchor "stage.output": to the next stage, peers[0]
    allreduce_sum,     // an AnchorDecl::Combine::sum anchor: in-place sum over `group`
    allgather_cols,    // a concat_cols anchor: [rows, sizes[r]] from each group rank r -> [rows, sum(sizes)]
    alltoallv,         // a route anchor: tokens to the group ranks holding their units (sizes[r]: units rank r
                       // holds, in order) and the answers back
    allgather_rows,    // a concat_rows anchor: rank r's share of the rows (an even split) to every rank
    send_tokens,       // anchor "tokens.out", last stage: sampled tokens back to the first stage, peers[0]
    recv_tokens,       // anchor "tokens.in", first stage: from peers[0]
  };
  Kind kind;
  std::string anchor;
  std::string group;            // collectives: the CommGroup's name
  std::vector<int> peers;       // point to point: the other world rank; collectives: the group's world ranks
  std::vector<int64_t> sizes;   // allgather_cols: columns each group rank holds, in group-rank order
};

struct RankPlan {
  World world;
  int layer_begin = 0;  // [layer_begin, layer_end) run on this rank
  int layer_end = 0;
  bool has_embedding = false;  // first stage
  bool has_head = false;       // last stage: final norm + output head + sampling
  std::vector<WeightShard> shards;
  std::vector<CommGroup> groups;
  std::vector<CommStep> steps;  // in the order of one forward pass
  // The step at `anchor` of `kind`, or nullptr.
  const CommStep* step(const std::string& anchor, CommStep::Kind kind) const {
    for (const CommStep& s : steps)
      if (s.anchor == anchor && s.kind == kind) return &s;
    return nullptr;
  }
  const WeightShard* shard(const std::string& tensor) const {
    for (const WeightShard& s : shards)
      if (s.tensor == tensor) return &s;
    return nullptr;
  }
};

class Strategy {
 public:
  virtual ~Strategy() = default;
  virtual std::string name() const = 0;
  // Throws std::invalid_argument with a sentence a user can act on (e.g. the tp values that would work).
  virtual RankPlan plan(const ModelLayout& model, const World& world, const StrategyOptions& options) const = 0;
};

inline const char* comm_step_name(CommStep::Kind k) {
  switch (k) {
    case CommStep::Kind::recv_activations: return "recv_activations";
    case CommStep::Kind::send_activations: return "send_activations";
    case CommStep::Kind::allreduce_sum: return "allreduce_sum";
    case CommStep::Kind::allgather_cols: return "allgather_cols";
    case CommStep::Kind::alltoallv: return "alltoallv";
    case CommStep::Kind::allgather_rows: return "allgather_rows";
    case CommStep::Kind::send_tokens: return "send_tokens";
    case CommStep::Kind::recv_tokens: return "recv_tokens";
  }
  return "?";
}

}  // namespace hpcinfer
