// Plan-building pieces shared by the strategy plugins (pp, tp_pp). Header-only: plugins link nothing of the core.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "hpcinfer/strategy.hpp"

namespace hpcinfer::plugins {

// Relative compute/memory cost of one transformer layer and of the output head (weights read per token).
inline double layer_cost(const ModelDesc& m) {
  const double q = double(m.n_heads) * m.head_dim, kv = double(m.n_kv_heads) * m.head_dim;
  return double(m.dim) * (q + 2 * kv) + q * m.dim + 3.0 * m.dim * m.hidden_dim;
}
inline double head_cost(const ModelDesc& m) { return double(m.vocab) * m.dim; }

// Layers per stage. Explicit split: validated. Otherwise: contiguous ranges minimizing the most expensive stage,
// counting the output head on the last stage (linear-partition dynamic programme; every stage gets >= 1 layer).
inline std::vector<int> stage_layers(const ModelDesc& m, int pp, const std::vector<int>& split) {
  if (pp > m.n_layers)
    throw std::invalid_argument("world.pp = " + std::to_string(pp) + " stages but the model has only " +
                                std::to_string(m.n_layers) + " layers (each stage needs at least one)");
  if (!split.empty()) {
    if (int(split.size()) != pp)
      throw std::invalid_argument("world.layer_split has " + std::to_string(split.size()) + " entries but world.pp = " +
                                  std::to_string(pp));
    const int total = std::accumulate(split.begin(), split.end(), 0);
    for (int s : split)
      if (s < 1) throw std::invalid_argument("world.layer_split: every stage needs at least one layer");
    if (total != m.n_layers)
      throw std::invalid_argument("world.layer_split covers " + std::to_string(total) + " layers but the model has " +
                                  std::to_string(m.n_layers));
    return split;
  }
  const int L = m.n_layers;
  const double lc = layer_cost(m), hc = head_cost(m);
  // best[s][l]: minimal max-stage cost placing the first l layers on s stages; cut[s][l]: where stage s starts.
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> best(size_t(pp) + 1, std::vector<double>(size_t(L) + 1, inf));
  std::vector<std::vector<int>> cut(size_t(pp) + 1, std::vector<int>(size_t(L) + 1, 0));
  best[0][0] = 0;
  for (int s = 1; s <= pp; ++s)
    for (int l = s; l <= L; ++l)
      for (int k = s - 1; k < l; ++k) {
        double c = (l - k) * lc + ((s == pp && l == L) ? hc : 0.0);
        double v = std::max(best[size_t(s) - 1][size_t(k)], c);
        if (v < best[size_t(s)][size_t(l)]) {
          best[size_t(s)][size_t(l)] = v;
          cut[size_t(s)][size_t(l)] = k;
        }
      }
  std::vector<int> out(static_cast<size_t>(pp));
  for (int s = pp, l = L; s >= 1; --s) {
    int k = cut[size_t(s)][size_t(l)];
    out[size_t(s) - 1] = l - k;
    l = k;
  }
  return out;
}

// Fills layer range, stage neighbours and the pipeline communication steps (no tensor parallelism yet).
inline void fill_pipeline(const ModelDesc& m, const World& w, const std::vector<int>& layers, RankPlan& p) {
  p.world = w;
  const int s = w.pp_rank();
  p.layer_begin = std::accumulate(layers.begin(), layers.begin() + s, 0);
  p.layer_end = p.layer_begin + layers[size_t(s)];
  p.has_embedding = w.is_first_stage();
  p.has_head = w.is_last_stage();
  p.prev_stage_rank = w.is_first_stage() ? -1 : w.rank_of(w.tp_rank(), s - 1);
  p.next_stage_rank = w.is_last_stage() ? -1 : w.rank_of(w.tp_rank(), s + 1);
  p.tp_group.clear();
  for (int t = 0; t < w.tp; ++t) p.tp_group.push_back(w.rank_of(t, s));
  p.vocab = {0, m.vocab};
}

// The weight shards of layers [layer_begin, layer_end) for the plan's q/kv head and ffn slices, plus the embedding
// and head on the first/last stage (replicated across the tp group: see docs/ARCHITECTURE.md).
inline void fill_shards(const ModelDesc& m, RankPlan& p) {
  const int64_t hd = m.head_dim, D = m.dim;
  const Range q{p.q_heads.begin * hd, p.q_heads.end * hd}, kv{p.kv_heads.begin * hd, p.kv_heads.end * hd};
  const Range all_d{0, D};
  p.shards.clear();
  if (p.has_embedding) p.shards.push_back({"tok_embeddings", {0, m.vocab}, all_d});
  for (int l = p.layer_begin; l < p.layer_end; ++l) {
    p.shards.push_back({layer_tensor(l, "attn_norm"), {0, 1}, all_d});
    p.shards.push_back({layer_tensor(l, "wq"), q, all_d});
    p.shards.push_back({layer_tensor(l, "wk"), kv, all_d});
    p.shards.push_back({layer_tensor(l, "wv"), kv, all_d});
    if (m.qkv_bias) {
      p.shards.push_back({layer_tensor(l, "bq"), {0, 1}, q});
      p.shards.push_back({layer_tensor(l, "bk"), {0, 1}, kv});
      p.shards.push_back({layer_tensor(l, "bv"), {0, 1}, kv});
    }
    p.shards.push_back({layer_tensor(l, "wo"), all_d, q});
    p.shards.push_back({layer_tensor(l, "ffn_norm"), {0, 1}, all_d});
    p.shards.push_back({layer_tensor(l, "w_gate"), p.ffn, all_d});
    p.shards.push_back({layer_tensor(l, "w_up"), p.ffn, all_d});
    p.shards.push_back({layer_tensor(l, "w_down"), all_d, p.ffn});
  }
  if (p.has_head) {
    p.shards.push_back({"norm", {0, 1}, all_d});
    p.shards.push_back({m.tied_embeddings ? "tok_embeddings" : "output", p.vocab, all_d});
  }
}

// Communication steps of one forward pass, in order.
inline void fill_steps(const ModelDesc&, RankPlan& p) {
  using K = CommStep::Kind;
  p.steps.clear();
  if (p.prev_stage_rank >= 0) p.steps.push_back({K::recv_activations, "stage input", {p.prev_stage_rank}});
  if (p.tp_group.size() > 1)
    for (int l = p.layer_begin; l < p.layer_end; ++l) {
      p.steps.push_back({K::allreduce_sum, layer_tensor(l, "attn_out"), p.tp_group});
      p.steps.push_back({K::allreduce_sum, layer_tensor(l, "ffn_out"), p.tp_group});
    }
  if (p.next_stage_rank >= 0) p.steps.push_back({K::send_activations, "stage output", {p.next_stage_rank}});
  const int pp = p.world.pp;
  if (pp > 1 && p.has_head) p.steps.push_back({K::send_tokens, "sampled tokens", {p.world.rank_of(p.world.tp_rank(), 0)}});
  if (pp > 1 && p.has_embedding)
    p.steps.push_back({K::recv_tokens, "next input tokens", {p.world.rank_of(p.world.tp_rank(), pp - 1)}});
}

}  // namespace hpcinfer::plugins
