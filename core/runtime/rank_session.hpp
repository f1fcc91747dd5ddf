// Everything one rank needs for an experiment, assembled in a fixed order: rendezvous and transport first (so a
// wrong world size or a missing peer fails fast), then the plan, then only this rank's weights.
#pragma once

#include <memory>
#include <string>

#include "core/config/experiment_config.hpp"
#include "core/model/model_source.hpp"
#include "core/plugin/plugin_registry.hpp"
#include "core/rendezvous/launch_env.hpp"
#include "core/runtime/llama_stage.hpp"
#include "core/runtime/thread_pool.hpp"
#include "core/tokenizer/tokenizer.hpp"

namespace hpcinfer {

struct RankSession {
  ExperimentConfig cfg;
  LaunchEnv env;
  std::unique_ptr<ModelSource> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<PluginRegistry> registry;
  std::unique_ptr<Strategy> strategy;
  std::unique_ptr<WeightFormat> weights;
  std::unique_ptr<KeyValueStore> store;
  std::unique_ptr<Communicator> comm;  // the whole world; null in a world of one
  std::unique_ptr<Communicator> tp_group_comm;  // this stage's tp group when tp > 1 and pp > 1
  Communicator* tp_comm = nullptr;     // what the stage all-reduces over: the world (pp = 1) or the group
  RankPlan plan;
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<LlamaStage> stage;
  double weight_load_s = 0;
  std::string weights_plugin;  // resolved name ("auto" replaced)
  ~RankSession();              // the stage (plugin objects) goes before the plugins' factories
};

// Model, tokenizer, registry, strategy and plan; no weights, no communication (for `plan` and before open_rank).
std::unique_ptr<RankSession> describe_rank(const ExperimentConfig& cfg, const LaunchEnv& env);
// The same with a model already open (`plan` on a config-only directory: shapes without tensors).
std::unique_ptr<RankSession> describe_rank(const ExperimentConfig& cfg, const LaunchEnv& env,
                                          std::unique_ptr<ModelSource> model);
// Then connects the world (world size > 1) and packs this rank's weights: n_slots sequences of max_ctx tokens.
void open_rank(RankSession& s, int n_slots, int max_ctx);

std::unique_ptr<Tokenizer> open_tokenizer(const std::string& tokenizer_path, const ModelSource& model);
// "auto" -> "bf16" for bf16 checkpoints, else "f32"; other names unchanged.
std::string resolve_weights_plugin(const std::string& name, const ModelSource& model);
// Rendezvous spec for a run: world.rendezvous, else a fresh file store under outputs.dir named by the job id.
std::string rendezvous_spec(const ExperimentConfig& cfg, const LaunchEnv& env);

}  // namespace hpcinfer
