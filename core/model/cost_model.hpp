// The one cost and memory model: what a rank holds and moves, from the model description (its block kinds), the
// rank's plan and the weight format's own bytes(rows, cols). Used by `plan` (memory per rank), `make-model`
// (parameter counts), `bench` (bytes and flops per token) and `eval infer` (which points fit). The stage packs
// exactly what this counts (tested: test_cost_model).
#pragma once

#include <string>
#include <vector>

#include "hpcinfer/model.hpp"
#include "hpcinfer/strategy.hpp"
#include "hpcinfer/weight_format.hpp"

namespace hpcinfer {

struct ShardCost {
  WeightShard shard;
  double bytes = 0;       // as packed (matrices by the format, vectors as f32)
  bool shared = false;    // the tied head reusing the embedding's copy: counted once, under tok_embeddings
};

struct RankCost {
  std::vector<ShardCost> shards;
  double weight_bytes = 0;           // everything the rank packs
  double streamed_weight_bytes = 0;  // read per decoded token: every matrix but the embedding table (unless the
                                     // head is that table)
  double kv_bytes_per_token = 0;     // cache of one sequence, all local layers, per token of context
  double scratch_floats_per_token = 0;  // the forward pass's f32 scratch per token: hidden + the blocks' slots
  double matmul_params = 0;          // multiply-adds per token through the rank's matrices (embedding excluded)
  double attention_width = 0;        // sum over local layers of query heads x head_dim (attention flops per
                                     // token = 4 x this x context)
  bool has_layers = false;
};

// weights may be nullptr: matrices then count at 4 bytes a value (f32).
RankCost rank_cost(const ModelDesc& m, const RankPlan& plan, const WeightFormat* weights);

// Memory one rank needs for `batch` sequences of `ctx` tokens with `tokens_per_pass` tokens in the largest forward
// pass (the planner takes batch x ctx: a whole prompt in one pass).
struct MemoryPlan {
  double weights = 0, kv_cache = 0, activations = 0, workspace = 0;
  double total() const { return weights + kv_cache + activations + workspace; }
};
// workspace: per host thread one attention score row block (4 heads x ctx), and on the last stage the head's
// normed rows and logits (its shard and the gathered whole) for `batch` sequences.
MemoryPlan memory_plan(const ModelDesc& m, const RankPlan& plan, const RankCost& cost, int batch, int ctx,
                       double tokens_per_pass, int threads);

}  // namespace hpcinfer
