// The one cost model (core/model/cost_model.hpp) against what a stage really packs: for every rank of single,
// pp=2 and tp=2 (tp=3 for three heads) plans (vocab-parallel or not), on test shapes with GQA, q/k/v biases + tied embeddings, q/k norms,
// MQA + a prime vocab, and every CPU weights plugin, the planner's weight bytes, streamed bytes and KV-cache bytes
// are the stage's, to the byte. (The stage is built in-process; a tp plan's collectives get a communicator that is
// never called: nothing runs forward here.)
#include <gtest/gtest.h>

#include <stdexcept>

#include "core/backend/cpu_backend.hpp"
#include "core/model/cost_model.hpp"
#include "core/model/model_layout.hpp"
#include "core/model/model_source.hpp"
#include "core/plugin/plugin_registry.hpp"
#include "core/runtime/model_stage.hpp"
#include "support/test_support.hpp"

namespace hpcinfer {
namespace {

class UnusedComm final : public Communicator {
 public:
  void init(const CommInit&) override {}
  int rank() const override { return 0; }
  int size() const override { return 2; }
  MemorySpace memory_space() const override { return MemorySpace::host; }
  void send(const void*, size_t, int, uint32_t) override { fail(); }
  void recv(void*, size_t, int, uint32_t) override { fail(); }
  void allreduce_sum_f32(float*, size_t) override { fail(); }
  void allreduce_sum_bf16(uint16_t*, size_t) override { fail(); }
  void allgather(const void*, size_t, void*) override { fail(); }
  void alltoallv(const void*, const size_t*, void*, const size_t*) override { fail(); }
  void broadcast(void*, size_t, int) override { fail(); }
  void barrier() override { fail(); }
  CommStats stats() const override { return {}; }

 private:
  [[noreturn]] static void fail() { throw std::logic_error("the cost-model test runs no communication"); }
};

TEST(CostModel, PlannerBytesAreWhatTheStagePacks) {
  test::ScratchDir dir;
  PluginRegistry reg({test::plugin_dir()});
  CpuBackend cpu(1);
  UnusedComm comm;
  const int slots = 3, ctx = 40;
  int checked = 0;
  for (const char* preset : {"tiny-gqa", "tiny-qwen2", "tiny-qwen3", "tiny-odd"}) {
    const std::string path = (dir / preset).string();
    const auto made = test::run_command(test::bin() + " make-model --preset " + preset + " --out " + path + " 2>&1");
    ASSERT_EQ(made.exit_code, 0) << made.output;
    auto src = open_model(path);
    const ModelDesc& m = src->desc();
    const ModelLayout layout = model_layout(m);
    struct Plan { const char* strategy; int tp, pp; bool vocab_parallel; };
    const int tp = m.layers[0].attn.n_heads % 2 ? 3 : 2;  // tiny-odd: 3 heads
    for (const Plan& pl : {Plan{"pp", 1, 1, true}, Plan{"pp", 1, 2, true}, Plan{"tp_pp", tp, 1, true},
                           Plan{"tp_pp", tp, 1, false}}) {
      auto strategy = reg.create_strategy(pl.strategy);
      StrategyOptions opt;
      opt.vocab_parallel = pl.vocab_parallel;
      opt.replicate_kv_heads = true;  // tiny-odd has one kv head
      for (const char* weights : {"f32", "bf16", "int8"}) {
        auto fmt = reg.create_weights(weights);
        for (int rank = 0; rank < pl.tp * pl.pp; ++rank) {
          SCOPED_TRACE(std::string(preset) + " " + pl.strategy + " tp " + std::to_string(pl.tp) + " pp " +
                       std::to_string(pl.pp) + " vocab_parallel " + std::to_string(pl.vocab_parallel) + " " + weights +
                       " rank " + std::to_string(rank));
          const RankPlan plan = strategy->plan(layout, World{pl.tp, pl.pp, rank}, opt);
          std::map<std::string, Communicator*> groups;
          for (const CommGroup& g : plan.groups) groups[g.name] = &comm;
          ModelStage stage(*src, plan, *fmt, cpu, groups, slots, ctx);
          const RankCost cost = rank_cost(m, plan, fmt.get());
          EXPECT_EQ(size_t(cost.weight_bytes), stage.weight_bytes());
          EXPECT_EQ(size_t(cost.streamed_weight_bytes), stage.streamed_weight_bytes());
          EXPECT_EQ(size_t(cost.kv_bytes_per_token * slots * ctx), stage.kv_bytes());
          const MemoryPlan mem = memory_plan(m, plan, cost, slots, ctx, slots * ctx, 1);
          EXPECT_EQ(mem.weights, cost.weight_bytes);
          EXPECT_EQ(mem.kv_cache, double(stage.kv_bytes()));
          ++checked;
        }
      }
    }
  }
  EXPECT_EQ(checked, 3 * 3 * (1 + 2 + 2 + 2) + 3 * (1 + 2 + 3 + 3));
}

}  // namespace
}  // namespace hpcinfer
