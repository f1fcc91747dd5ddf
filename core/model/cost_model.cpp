#include "core/model/cost_model.hpp"

#include <algorithm>
#include <map>

#include "core/model/model_layout.hpp"

#include "core/model/blocks/block.hpp"

namespace hpcinfer {

RankCost rank_cost(const ModelDesc& m, const RankPlan& p, const WeightFormat* fmt) {
  RankCost c;
  std::map<std::string, const LogicalTensor*> by_name;  // what each shard is a part of
  const ModelLayout layout = model_layout(m);
  for (const LogicalTensor& t : layout.tensors) by_name[t.name] = &t;
  c.has_layers = p.layer_end > p.layer_begin;
  const WeightShard* emb = p.shard("tok_embeddings");
  for (const WeightShard& s : p.shards) {
    ShardCost sc{s, 0, false};
    const auto t = by_name.find(s.tensor);
    const bool vector = t != by_name.end() && t->second->is_vector();
    if (vector || (t != by_name.end() && t->second->f32))
      sc.bytes = 4.0 * double(s.rows.size()) * double(s.cols.size());
    else
      sc.bytes = fmt ? double(fmt->bytes(s.rows.size(), s.cols.size())) : 4.0 * double(s.rows.size()) * double(s.cols.size());
    sc.shared = s.tensor == "output" && m.tied_embeddings && emb && emb->rows == s.rows && emb->cols == s.cols;
    if (!sc.shared) c.weight_bytes += sc.bytes;
    const bool streamed = s.tensor != "tok_embeddings" || (m.tied_embeddings && p.has_head && p.shard("output") &&
                                                          p.shard("output")->rows == s.rows);
    if (streamed && !sc.shared) c.streamed_weight_bytes += sc.bytes;
    if (!vector && s.tensor != "tok_embeddings") c.matmul_params += double(s.rows.size()) * double(s.cols.size());
    c.shards.push_back(sc);
  }
  std::vector<double> slots;  // per workspace slot: the largest any block asks for
  for (int l = p.layer_begin; l < p.layer_end; ++l) {
    const LayerSpec& spec = m.layers.at(size_t(l));
    for (const BlockKind* k : {&block_kind("attention", spec.attn.kind), &block_kind("ffn", spec.ffn.kind)}) {
      c.kv_bytes_per_token += k->cache_bytes_per_token(m, l, p);
      const std::vector<double> s = k->scratch_per_token(m, l, p);
      if (slots.size() < s.size()) slots.resize(s.size(), 0.0);
      for (size_t i = 0; i < s.size(); ++i) slots[i] = std::max(slots[i], s[i]);
    }
    const WeightShard* q = p.shard(layer_tensor(l, "wq"));
    c.attention_width += q ? double(q->rows.size()) : double(spec.attn.n_heads) * double(spec.attn.head_dim);
  }
  c.scratch_floats_per_token = double(m.dim);  // the hidden states
  for (double s : slots) c.scratch_floats_per_token += s;
  return c;
}

MemoryPlan memory_plan(const ModelDesc& m, const RankPlan& p, const RankCost& c, int batch, int ctx,
                       double tokens_per_pass, int threads) {
  MemoryPlan out;
  out.weights = c.weight_bytes;
  out.kv_cache = c.kv_bytes_per_token * double(batch) * double(ctx);
  out.activations = 4.0 * tokens_per_pass * (c.has_layers ? c.scratch_floats_per_token : double(m.dim));
  const WeightShard* head = p.has_head ? p.shard("output") : nullptr;
  out.workspace = (c.has_layers ? 4.0 * double(threads) * 4.0 * double(ctx) : 0.0) +
                  (head ? 4.0 * double(batch) * (double(m.dim) + double(head->rows.size()) + double(m.vocab)) : 0.0);
  return out;
}

}  // namespace hpcinfer
