// strategy plugin "tp_pp": Megatron-style tensor parallelism inside each pipeline stage.
//
// It cuts every tensor along the axis its block kind declares, by the units it names:
//   q_head   whole query heads, evenly (tp must divide the heads);
//   kv_head  whole key/value heads, evenly when tp divides them; when tp > n_kv_heads and tp is a multiple of them,
//            each rank keeps the kv head its query heads use (replication) if world.replicate_kv_heads allows;
//   ffn      FFN rows, evenly (any size); expert_ffn / shared_ffn: every routed / the shared expert's rows alike;
//   kv_group whole groups of kv heads that share low-rank latents (palu attention), evenly: tp must divide the groups
//            (a group never straddles ranks);
//   vocab    embedding and output-head rows, evenly (world.vocab_parallel, default on; off: replicated, so every tp
//            rank holds vocab x dim of each);
//   expert   with world.expert_parallel: whole experts, evenly (the expert count must divide by tp), and then
//            expert_ffn stays whole; without: every rank has every expert, each sliced by expert_ffn.
// MoE outputs combine by an all-reduce (world.moe_comm: allreduce) or, with expert parallelism, by all-to-all
// (alltoall): each rank takes an even share of the tokens, sends each token's hidden state to the ranks holding its
// experts, gets their outputs back, adds the shared expert (then whole on every rank) and the ranks gather the rows.
// Where a cut leaves ranks with partial results (an anchor the block kind declares over a cut unit) the plan has a
// collective over the stage's tp group ("tp.stage<k>"): all-reduce for partial sums (after the row-parallel o and
// down projections: two per layer; after a vocab-split embedding lookup), all-gather of columns for the vocab-split
// logits, so every tp rank samples the same token from the whole distribution.
#include <map>
#include <stdexcept>
#include <string>

#include "hpcinfer/plugin.hpp"
#include "plugins/common/plan_builder.hpp"

namespace {

using hpcinfer::Range;
using hpcinfer::plugins::even_slice;

std::string working_tp_values(int64_t heads, int64_t kv, bool replicate) {
  std::string s;
  for (int64_t t = 1; t <= heads; ++t) {
    if (heads % t) continue;
    if (kv % t && !(replicate && t % kv == 0)) continue;
    s += (s.empty() ? "" : ", ") + std::to_string(t);
  }
  return s;
}

class TensorPipelineStrategy final : public hpcinfer::Strategy {
 public:
  std::string name() const override { return "tp_pp"; }
  hpcinfer::RankPlan plan(const hpcinfer::ModelLayout& m, const hpcinfer::World& w,
                          const hpcinfer::StrategyOptions& opt) const override {
    if (w.rank < 0 || w.rank >= w.size())
      throw std::invalid_argument("rank " + std::to_string(w.rank) + " outside a world of " + std::to_string(w.size()));
    const int tp = w.tp;
    if (opt.moe_alltoall && !opt.expert_parallel)
      throw std::invalid_argument("world.moe_comm: alltoall sends tokens to the ranks holding their experts: it needs "
                                  "world.expert_parallel: true");
    const auto counts = hpcinfer::plugins::unit_counts(m);
    auto count = [&](int layer, const char* unit) -> int64_t {
      auto it = counts.find({layer, unit});
      return it == counts.end() ? 0 : it->second.units;
    };
    for (int l = 0; l < m.n_layers; ++l)  // experts must split evenly over the ranks that share them out
      if (const int64_t experts = count(l, "expert"); opt.expert_parallel && experts % tp)
        throw std::invalid_argument("world.expert_parallel: layer " + std::to_string(l) + " has " +
                                    std::to_string(experts) + " experts, not divisible by the " + std::to_string(tp) +
                                    " ranks of world.tp");
    for (int l = 0; l < m.n_layers; ++l) {  // heads must split: say which tp values would
      const int64_t heads = count(l, "q_head"), kv = count(l, "kv_head"), groups = count(l, "kv_group");
      if (heads == 0) continue;
      if (groups > 0 && groups % tp) {
        std::string ok;
        for (int64_t t = 1; t <= groups; ++t)
          if (groups % t == 0 && heads % t == 0) ok += (ok.empty() ? "" : ", ") + std::to_string(t);
        throw std::invalid_argument("world.tp = " + std::to_string(tp) + " would cut a palu group of key-value heads: "
                                    "layer " + std::to_string(l) + " has " + std::to_string(groups) +
                                    " groups of " + std::to_string(kv / groups) + " kv heads; tp values that work: " + ok);
      }
      const bool kv_ok = kv == 0 || kv % tp == 0 || (opt.replicate_kv_heads && tp % kv == 0);
      if (heads % tp || !kv_ok)
        throw std::invalid_argument("world.tp = " + std::to_string(tp) + " does not divide the model's " +
                                    std::to_string(heads) + " query / " + std::to_string(kv) +
                                    " key-value heads; tp values that work: " +
                                    working_tp_values(heads, kv == 0 ? heads : kv, opt.replicate_kv_heads) +
                                    (opt.replicate_kv_heads ? "" : " (more with world.replicate_kv_heads: true)"));
    }
    const hpcinfer::plugins::UnitSplit split = [&](int layer, const std::string& unit, int64_t units, int part) -> Range {
      if (unit == "shared_ffn") return opt.moe_alltoall ? Range{0, units} : even_slice(units, tp, part);
      if (unit == "q_head" || unit == "ffn" || unit == "kv_group") return even_slice(units, tp, part);
      if (unit == "expert_ffn") return opt.expert_parallel ? Range{0, units} : even_slice(units, tp, part);
      if (unit == "expert") {
        if (!opt.expert_parallel) return Range{0, units};
        if (units % tp)
          throw std::invalid_argument("world.expert_parallel: layer " + std::to_string(layer) + " has " +
                                      std::to_string(units) + " experts, not divisible by the " + std::to_string(tp) +
                                      " ranks of world.tp");
        return even_slice(units, tp, part);
      }
      if (unit == "vocab") return opt.vocab_parallel ? even_slice(units, tp, part) : Range{0, units};
      if (unit == "kv_head") {
        if (units % tp == 0) return even_slice(units, tp, part);
        const int64_t heads = count(layer, "q_head");  // replicate: the one kv head this part's query heads use
        const int64_t first_q = even_slice(heads, tp, part).begin, group = heads / units;
        return {first_q / group, first_q / group + 1};
      }
      throw std::invalid_argument("strategy 'tp_pp' cannot split unit '" + unit + "' (layer " + std::to_string(layer) +
                                  "); it splits q_head, kv_head, kv_group, ffn, expert, expert_ffn, shared_ffn and vocab");
    };
    hpcinfer::RankPlan p;
    hpcinfer::plugins::fill_pipeline(w, hpcinfer::plugins::stage_layers(m, w.pp, opt.layer_split), p);
    hpcinfer::plugins::fill_shards(m, p, split, w.tp_rank());
    if (tp > 1) {
      hpcinfer::CommGroup g{"tp.stage" + std::to_string(w.pp_rank()), {}};
      for (int t = 0; t < tp; ++t) g.ranks.push_back(w.rank_of(t, w.pp_rank()));
      p.groups.push_back(g);
      hpcinfer::plugins::fill_collectives(m, p, g, split,
                                          opt.moe_alltoall ? std::vector<std::string>{"expert"} : std::vector<std::string>{});
    }
    return p;
  }
};

void* create() { return static_cast<hpcinfer::Strategy*>(new TensorPipelineStrategy()); }
const hpcinfer::PluginInfo kInfo{hpcinfer::kPluginAbiVersion, hpcinfer::PluginKind::strategy, "tp_pp", "1.0.0",
                                 "tensor parallelism (Megatron column/row split, vocab-parallel head) inside pipeline "
                                 "stages", &create, nullptr};
}  // namespace
HPCINFER_EXPORT_PLUGIN(kInfo)
