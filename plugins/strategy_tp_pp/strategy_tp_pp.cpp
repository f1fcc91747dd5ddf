// strategy plugin "tp_pp": Megatron-style tensor parallelism inside each pipeline stage.
//
// Per layer: column-parallel wq / wk / wv (split per q, k and v by whole heads, so GQA groups stay together) and
// w_gate / w_up (split by FFN rows); row-parallel wo and w_down (split by their input columns), each followed by an
// all-reduce over the stage's tp group: two all-reduces per layer.
// Embedding and output head: replicated on every tp rank of the first / last stage. The lookup needs no
// communication, and a replicated head lets every tp rank sample the same token without an all-gather of logits;
// the price is vocab x dim weights per tp rank (see docs/ARCHITECTURE.md).
// KV heads: split when tp divides n_kv_heads; when tp > n_kv_heads and tp is a multiple of it, each rank keeps the
// KV head its query heads use (replication) if world.replicate_kv_heads allows, else the plan is refused with the
// tp values that work.
#include <stdexcept>
#include <string>

#include "hpcinfer/plugin.hpp"
#include "plugins/common/plan_builder.hpp"

namespace {

using hpcinfer::Range;

Range even_slice(int64_t n, int parts, int i) { return {n * i / parts, n * (i + 1) / parts}; }

std::string working_tp_values(const hpcinfer::ModelDesc& m, bool replicate) {
  std::string s;
  for (int t = 1; t <= m.n_heads; ++t) {
    if (m.n_heads % t) continue;
    if (m.n_kv_heads % t && !(replicate && t % m.n_kv_heads == 0)) continue;
    s += (s.empty() ? "" : ", ") + std::to_string(t);
  }
  return s;
}

class TensorPipelineStrategy final : public hpcinfer::Strategy {
 public:
  std::string name() const override { return "tp_pp"; }
  hpcinfer::RankPlan plan(const hpcinfer::ModelDesc& m, const hpcinfer::World& w,
                          const hpcinfer::StrategyOptions& opt) const override {
    if (w.rank < 0 || w.rank >= w.size())
      throw std::invalid_argument("rank " + std::to_string(w.rank) + " outside a world of " + std::to_string(w.size()));
    const int tp = w.tp, t = w.tp_rank();
    const bool kv_split = m.n_kv_heads % tp == 0;
    const bool kv_replicated = !kv_split && opt.replicate_kv_heads && tp % m.n_kv_heads == 0;
    if (m.n_heads % tp || (!kv_split && !kv_replicated))
      throw std::invalid_argument("world.tp = " + std::to_string(tp) + " does not divide the model's " +
                                  std::to_string(m.n_heads) + " query / " + std::to_string(m.n_kv_heads) +
                                  " key-value heads; tp values that work: " +
                                  working_tp_values(m, opt.replicate_kv_heads) +
                                  (opt.replicate_kv_heads ? "" : " (more with world.replicate_kv_heads: true)"));
    hpcinfer::RankPlan p;
    hpcinfer::plugins::fill_pipeline(m, w, hpcinfer::plugins::stage_layers(m, w.pp, opt.layer_split), p);
    p.q_heads = even_slice(m.n_heads, tp, t);
    if (kv_split) {
      p.kv_heads = even_slice(m.n_kv_heads, tp, t);
    } else {  // replicate: the one KV head this rank's query heads belong to
      const int group = m.n_heads / m.n_kv_heads;
      p.kv_heads = {p.q_heads.begin / group, p.q_heads.begin / group + 1};
    }
    p.ffn = even_slice(m.hidden_dim, tp, t);
    hpcinfer::plugins::fill_shards(m, p);
    hpcinfer::plugins::fill_steps(m, p);
    return p;
  }
};

void* create() { return static_cast<hpcinfer::Strategy*>(new TensorPipelineStrategy()); }
const hpcinfer::PluginInfo kInfo{hpcinfer::kPluginAbiVersion, hpcinfer::PluginKind::strategy, "tp_pp", "1.0.0",
                                 "tensor parallelism (Megatron column/row split) inside pipeline stages", &create,
                                 nullptr};
}  // namespace
HPCINFER_EXPORT_PLUGIN(kInfo)
