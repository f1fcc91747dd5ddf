// strategy plugin "pp": pipeline parallelism only. Contiguous layer ranges per stage, balanced by cost (the output
// head counts on the last stage) or split explicitly (world.layer_split); embeddings on the first stage, final norm
// and output head on the last. Every tensor is whole (no tensor parallelism: use tp_pp for that).
#include <stdexcept>
#include <string>

#include "hpcinfer/plugin.hpp"
#include "plugins/common/plan_builder.hpp"

namespace {

class PipelineStrategy final : public hpcinfer::Strategy {
 public:
  std::string name() const override { return "pp"; }
  hpcinfer::RankPlan plan(const hpcinfer::ModelLayout& m, const hpcinfer::World& w,
                          const hpcinfer::StrategyOptions& opt) const override {
    if (w.tp != 1)
      throw std::invalid_argument("strategy 'pp' does not split layers across ranks (world.tp = " +
                                  std::to_string(w.tp) + "); set plugins.strategy: tp_pp for tensor parallelism");
    if (w.rank < 0 || w.rank >= w.size())
      throw std::invalid_argument("rank " + std::to_string(w.rank) + " outside a world of " + std::to_string(w.size()));
    hpcinfer::RankPlan p;
    hpcinfer::plugins::fill_pipeline(w, hpcinfer::plugins::stage_layers(m, w.pp, opt.layer_split), p);
    auto whole = [](int, const std::string&, int64_t units, int) { return hpcinfer::Range{0, units}; };
    hpcinfer::plugins::fill_shards(m, p, whole, 0);
    return p;
  }
};

void* create() { return static_cast<hpcinfer::Strategy*>(new PipelineStrategy()); }
const hpcinfer::PluginInfo kInfo{hpcinfer::kPluginAbiVersion, hpcinfer::PluginKind::strategy, "pp", "1.0.0",
                                 "pipeline parallelism: contiguous layer ranges per stage, cost-balanced", &create,
                                 nullptr};
}  // namespace
HPCINFER_EXPORT_PLUGIN(kInfo)
