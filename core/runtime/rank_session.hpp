// Everything one rank needs for an experiment, assembled in a fixed order: the model description and the plan (no
// weights), the device/weights/transport combination checked, then rendezvous and transport (a wrong world size or a
// missing peer fails fast), then only this rank's weights on its backend.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/config/experiment_config.hpp"
#include "core/model/model_source.hpp"
#include "core/plugin/plugin_registry.hpp"
#include "core/rendezvous/launch_env.hpp"
#include "core/runtime/model_stage.hpp"
#include "core/tokenizer/tokenizer.hpp"
#include "hpcinfer/backend.hpp"

namespace hpcinfer {

struct RankSession {
  ExperimentConfig cfg;
  LaunchEnv env;   // this rank in its engine's world (serve with world.dp > 1: in its replica)
  LaunchEnv job;   // this rank in the whole job (the rendezvous store is the job's); = env without replicas
  std::unique_ptr<ModelSource> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<PluginRegistry> registry;
  std::unique_ptr<Strategy> strategy;
  std::unique_ptr<WeightFormat> weights;
  std::unique_ptr<Backend> backend;    // created by describe_rank (checked), initialised by open_rank
  std::unique_ptr<KeyValueStore> store;
  std::unique_ptr<Communicator> comm;  // the whole world; null in a world of one
  std::vector<std::unique_ptr<Communicator>> group_comms;  // the plan's groups that are not the whole world
  ModelLayout layout;                  // the model's tensors and anchors, as the strategy saw them
  RankPlan plan;
  std::unique_ptr<ModelStage> stage;
  double weight_load_s = 0;  // building the stage: weight_read_s of file reading, the rest packing
  double weight_read_s = 0;
  std::string weights_plugin;  // resolved name ("auto" replaced)
  int threads() const;         // host threads of the backend (0 for device backends)
  ~RankSession();              // the stage (plugin objects) goes before the backend and the plugins' factories
};

// Model, tokenizer, registry, strategy and plan, and the device / weights / transport combination checked (a
// ConfigError naming the key and the reason: nccl with host memory, bf16dot on cuda, cuda without a GPU); no weights,
// no communication (for `plan` and before open_rank).
std::unique_ptr<RankSession> describe_rank(const ExperimentConfig& cfg, const LaunchEnv& env);
// The same with a model already open (`plan` on a config-only directory: shapes without tensors).
std::unique_ptr<RankSession> describe_rank(const ExperimentConfig& cfg, const LaunchEnv& env,
                                          std::unique_ptr<ModelSource> model);
// Then connects the world and the plan's groups (world size > 1; the job's store when the job has more ranks); a
// no-op when already connected or alone. Every rank of the job calls it at the same point.
void connect_rank(RankSession& s);
// Then (connecting first when not yet connected) packs this rank's weights on its backend: n_slots sequences of
// max_ctx tokens. The plan's memory (weights, KV cache, activations) is checked against the device's free memory, or
// on the host against MemAvailable, before anything is allocated: a clear "needs N GB" instead of bad_alloc.
void open_rank(RankSession& s, int n_slots, int max_ctx);
// The KV context a run needs: its longest prompt + max_new_tokens + 1, at most the model's max_seq_len (computed
// without int overflow: max_new_tokens may be 2^31 - 1).
int run_context(int64_t longest_prompt, int64_t max_new_tokens, int max_seq_len);

std::unique_ptr<Tokenizer> open_tokenizer(const std::string& tokenizer_path, const ModelSource& model);
// "auto" -> the checkpoint's precision where a plugin holds it (bf16, int8 for Q8_0, int4 for Q4_0 on the cpu), else
// "f32"; other names unchanged.
std::string resolve_weights_plugin(const std::string& name, const ModelSource& model, const std::string& device);
// Rendezvous spec for a run: world.rendezvous, else a fresh file store under outputs.dir named by the job id.
std::string rendezvous_spec(const ExperimentConfig& cfg, const LaunchEnv& env);
// Strategy options from the configuration.
StrategyOptions strategy_options(const ExperimentConfig& cfg);

}  // namespace hpcinfer
