// Plan-building pieces shared by the strategy plugins (pp, tp_pp). Header-only: plugins link nothing of the core.
// They read only the ModelLayout (tensors with shard rules, anchors): no architecture knowledge lives here.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "hpcinfer/strategy.hpp"

namespace hpcinfer::plugins {

inline const LogicalTensor* find_tensor(const ModelLayout& m, const std::string& name) {
  for (const LogicalTensor& t : m.tensors)
    if (t.name == name) return &t;
  return nullptr;
}

// Relative cost of each layer and of the output head: weights read per token (matrix values; vectors are noise).
inline std::vector<double> layer_costs(const ModelLayout& m) {
  std::vector<double> c(static_cast<size_t>(m.n_layers), 0.0);
  for (const LogicalTensor& t : m.tensors)
    if (t.layer >= 0 && !t.is_vector()) c[size_t(t.layer)] += double(t.rows) * double(t.cols);
  return c;
}
inline double head_cost(const ModelLayout& m) {
  const LogicalTensor* h = find_tensor(m, "output");
  return h ? double(h->rows) * double(h->cols) : 0.0;
}

// Layers per stage. Explicit split: validated. Otherwise: contiguous ranges minimizing the most expensive stage,
// counting the output head on the last stage (linear-partition dynamic programme; every stage gets >= 1 layer).
inline std::vector<int> stage_layers(const ModelLayout& m, int pp, const std::vector<int>& split) {
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
  const std::vector<double> lc = layer_costs(m);
  std::vector<double> prefix(size_t(L) + 1, 0.0);
  for (int l = 0; l < L; ++l) prefix[size_t(l) + 1] = prefix[size_t(l)] + lc[size_t(l)];
  const double hc = head_cost(m);
  // best[s][l]: minimal max-stage cost placing the first l layers on s stages; cut[s][l]: where stage s starts.
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> best(size_t(pp) + 1, std::vector<double>(size_t(L) + 1, inf));
  std::vector<std::vector<int>> cut(size_t(pp) + 1, std::vector<int>(size_t(L) + 1, 0));
  best[0][0] = 0;
  for (int s = 1; s <= pp; ++s)
    for (int l = s; l <= L; ++l)
      for (int k = s - 1; k < l; ++k) {
        double c = prefix[size_t(l)] - prefix[size_t(k)] + ((s == pp && l == L) ? hc : 0.0);
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

// Layer range, first/last stage, and the pipeline's point-to-point steps (stage.input / stage.output with the
// neighbouring stage's rank of the same tp rank; tokens.out / tokens.in between the last and the first stage).
inline void fill_pipeline(const World& w, const std::vector<int>& layers, RankPlan& p) {
  using K = CommStep::Kind;
  p.world = w;
  const int s = w.pp_rank();
  p.layer_begin = std::accumulate(layers.begin(), layers.begin() + s, 0);
  p.layer_end = p.layer_begin + layers[size_t(s)];
  p.has_embedding = w.is_first_stage();
  p.has_head = w.is_last_stage();
  p.steps.clear();
  if (!w.is_first_stage()) p.steps.push_back({K::recv_activations, "stage.input", "", {w.rank_of(w.tp_rank(), s - 1)}, {}});
  if (!w.is_last_stage()) p.steps.push_back({K::send_activations, "stage.output", "", {w.rank_of(w.tp_rank(), s + 1)}, {}});
  if (w.pp > 1 && p.has_head) p.steps.push_back({K::send_tokens, "tokens.out", "", {w.rank_of(w.tp_rank(), 0)}, {}});
  if (w.pp > 1 && p.has_embedding) p.steps.push_back({K::recv_tokens, "tokens.in", "", {w.rank_of(w.tp_rank(), w.pp - 1)}, {}});
}

// The split units of a layout: for each (layer, unit) how many units there are (and the values per unit of the
// first tensor that declares it), read from the tensors that declare it (layer -1: the model-level tensors). Tensors
// of one layer that disagree on the count are an error naming them; their unit sizes may differ (a head is head_dim
// rows of wq and one value of the sinks).
struct UnitCount {
  int64_t units = 0;
  int64_t unit_size = 1;
};
using UnitKey = std::pair<int, std::string>;
inline std::map<UnitKey, UnitCount> unit_counts(const ModelLayout& m) {
  std::map<UnitKey, UnitCount> out;
  for (const LogicalTensor& t : m.tensors)  // selection units: as many as the largest index + 1
    if (t.select_index >= 0) {
      UnitCount& c = out[{t.layer, t.select_unit}];
      c.units = std::max(c.units, t.select_index + 1);
    }
  for (const LogicalTensor& t : m.tensors) {
    if (t.shard.axis == ShardRule::Axis::none) continue;
    const int64_t extent = t.shard.axis == ShardRule::Axis::rows ? t.rows : t.cols;
    if (t.shard.unit_size <= 0 || extent % t.shard.unit_size != 0)
      throw std::invalid_argument("tensor " + t.name + ": " + std::to_string(extent) + " values are not whole " +
                                  t.shard.unit + " units of " + std::to_string(t.shard.unit_size));
    const UnitCount c{extent / t.shard.unit_size, t.shard.unit_size};
    auto [it, fresh] = out.emplace(UnitKey{t.layer, t.shard.unit}, c);
    if (!fresh && it->second.units != c.units)
      throw std::invalid_argument("tensor " + t.name + ": " + std::to_string(c.units) + " " + t.shard.unit +
                                  " units, but other tensors of its layer have " + std::to_string(it->second.units));
  }
  return out;
}

// Which units of (layer, unit) group rank `part` holds, given how many there are.
using UnitSplit = std::function<Range(int layer, const std::string& unit, int64_t units, int part)>;

// Whether this rank runs tensor `t` (its stage holds the layer; the embedding on the first stage; norm and output
// head on the last).
inline bool runs(const RankPlan& p, int layer, const std::string& name) {
  if (layer >= 0) return layer >= p.layer_begin && layer < p.layer_end;
  if (name == "tok_embeddings" || name == "embed.out") return p.has_embedding;
  return p.has_head;  // norm, output, head.logits
}

// The shard of every tensor this rank runs: whole, or cut along its rule's axis at the units `split` gives `part`.
inline void fill_shards(const ModelLayout& m, RankPlan& p, const UnitSplit& split, int part) {
  const auto counts = unit_counts(m);
  p.shards.clear();
  for (const LogicalTensor& t : m.tensors) {
    if (!runs(p, t.layer, t.name)) continue;
    if (t.select_index >= 0) {  // a member of a selection unit (an expert): held whole by the ranks given it
      const Range u = split(t.layer, t.select_unit, counts.at({t.layer, t.select_unit}).units, part);
      if (t.select_index < u.begin || t.select_index >= u.end) continue;
    }
    WeightShard s{t.name, {0, t.rows}, {0, t.cols}};
    if (t.shard.axis != ShardRule::Axis::none) {
      const UnitCount& c = counts.at({t.layer, t.shard.unit});
      const Range u = split(t.layer, t.shard.unit, c.units, part);
      const int64_t size = t.shard.unit_size;
      (t.shard.axis == ShardRule::Axis::rows ? s.rows : s.cols) = {u.begin * size, u.end * size};
    }
    p.shards.push_back(s);
  }
}

// A collective step over `group` at every anchor this rank runs whose unit the group splits: allreduce_sum for
// partial sums, allgather_cols (with each group rank's column count) for columns. Units in `routed` are exchanged by
// all-to-all instead: their route anchors get alltoallv (sizes: the units each group rank holds), their concat_rows
// anchors allgather_rows, and they no longer count for sums. Inserted after the stage's input.
inline void fill_collectives(const ModelLayout& m, RankPlan& p, const CommGroup& group, const UnitSplit& split,
                             const std::vector<std::string>& routed = {}) {
  using K = CommStep::Kind;
  if (group.ranks.size() <= 1) return;
  const auto counts = unit_counts(m);
  std::vector<CommStep> collectives;
  for (const AnchorDecl& a : m.anchors) {
    if (!runs(p, a.layer, a.name)) continue;
    const bool routing = a.combine == AnchorDecl::Combine::route || a.combine == AnchorDecl::Combine::concat_rows;
    bool whole = true;
    std::vector<int64_t> sizes;  // concat_cols: the columns of its (one) unit each group rank holds; route: units
    for (const std::string& unit : a.units) {
      const bool is_routed = std::find(routed.begin(), routed.end(), unit) != routed.end();
      if (routing != is_routed) continue;  // route anchors only for routed units; sums and gathers only for the rest
      auto c = counts.find({a.layer, unit});
      if (c == counts.end()) continue;  // nothing of this layer is cut by that unit
      for (int r = 0; r < int(group.ranks.size()); ++r) {
        const Range u = split(a.layer, unit, c->second.units, r);
        whole = whole && u.begin == 0 && u.end == c->second.units;
        if (a.units.size() == 1) sizes.push_back(u.size() * (routing ? 1 : c->second.unit_size));
      }
    }
    if (whole) continue;
    switch (a.combine) {
      case AnchorDecl::Combine::sum: collectives.push_back({K::allreduce_sum, a.name, group.name, group.ranks, {}}); break;
      case AnchorDecl::Combine::concat_cols:
        collectives.push_back({K::allgather_cols, a.name, group.name, group.ranks, sizes});
        break;
      case AnchorDecl::Combine::route: collectives.push_back({K::alltoallv, a.name, group.name, group.ranks, sizes}); break;
      case AnchorDecl::Combine::concat_rows:
        collectives.push_back({K::allgather_rows, a.name, group.name, group.ranks, {}});
        break;
    }
  }
  auto at = std::find_if(p.steps.begin(), p.steps.end(), [](const CommStep& s) { return s.kind != K::recv_activations; });
  p.steps.insert(at, collectives.begin(), collectives.end());
}

inline Range even_slice(int64_t n, int parts, int i) { return {n * i / parts, n * (i + 1) / parts}; }

}  // namespace hpcinfer::plugins
