#include "core/runtime/rank_session.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "core/config/config_error.hpp"
#include "core/config/load_config.hpp"
#include "core/rendezvous/kv_store.hpp"

namespace hpcinfer {

RankSession::~RankSession() {
  stage.reset();
  tp_group_comm.reset();
  comm.reset();
}

std::unique_ptr<Tokenizer> open_tokenizer(const std::string& tokenizer_path, const ModelSource& model) {
  std::string path = tokenizer_path.empty() ? model.tokenizer_path() : tokenizer_path;
  if (path.empty())
    throw std::runtime_error(model.path() + ": no tokenizer found beside the model; set model.tokenizer (--tokenizer)");
  if (model.format() == "llama2c" && std::filesystem::path(path).extension() == ".bin")
    return load_llama2c_tokenizer(path, int(model.desc().vocab));
  return load_tokenizer(path);
}

std::string resolve_weights_plugin(const std::string& name, const ModelSource& model) {
  if (name != "auto") return name;
  const std::string probe = model.has_tensor("layers.0.wq") ? "layers.0.wq" : "tok_embeddings";
  return model.tensor(probe).dtype == DType::bf16 ? "bf16" : "f32";
}

std::string rendezvous_spec(const ExperimentConfig& cfg, const LaunchEnv& env) {
  if (!cfg.world.rendezvous.empty()) return cfg.world.rendezvous;
  if (env.job_id.empty())
    throw std::runtime_error("world.rendezvous is not set and no job id is known (HPCINFER_JOB_ID / SLURM_JOB_ID); "
                             "set world.rendezvous to file:///shared/dir or tcp://host:port");
  auto dir = std::filesystem::absolute(std::filesystem::path(cfg.outputs.dir) / ".rendezvous" / env.job_id);
  return "file://" + dir.string();
}

std::unique_ptr<RankSession> describe_rank(const ExperimentConfig& cfg, const LaunchEnv& env) {
  return describe_rank(cfg, env, open_model(cfg.model.path, cfg.model.format));
}

std::unique_ptr<RankSession> describe_rank(const ExperimentConfig& cfg, const LaunchEnv& env,
                                          std::unique_ptr<ModelSource> model) {
  auto s = std::make_unique<RankSession>();
  s->cfg = cfg;
  s->env = env;
  s->model = std::move(model);
  s->registry = std::make_unique<PluginRegistry>(PluginRegistry::for_config(cfg));
  s->strategy = s->registry->create_strategy(cfg.plugins.strategy);
  World w{cfg.world.tp, cfg.world.pp, env.rank};
  StrategyOptions opt;
  opt.layer_split = cfg.world.layer_split;
  opt.replicate_kv_heads = cfg.world.replicate_kv_heads;
  s->plan = s->strategy->plan(s->model->desc(), w, opt);
  s->weights_plugin = resolve_weights_plugin(cfg.plugins.weights, *s->model);
  return s;
}

void open_rank(RankSession& s, int n_slots, int max_ctx) {
  const ExperimentConfig& cfg = s.cfg;
  if (s.env.size > 1) {
    const auto timeout = std::chrono::milliseconds(int64_t(cfg.world.timeout_s) * 1000);
    s.store = make_store(rendezvous_spec(cfg, s.env), s.env.rank, s.env.size, timeout);
    s.comm = s.registry->create_comm(cfg.plugins.comm);
    CommInit init;
    init.rank = s.env.rank;
    init.size = s.env.size;
    init.store = s.store.get();
    init.prefix = "hpcinfer/" + (s.env.job_id.empty() ? std::string("job") : s.env.job_id);
    init.timeout = timeout;
    init.interface_name = cfg.world.interface;
    init.device = cfg.device == "cuda" ? s.env.local_rank : -1;
    s.comm->init(init);
    if (cfg.world.tp > 1 && cfg.world.pp == 1) s.tp_comm = s.comm.get();
    if (cfg.world.tp > 1 && cfg.world.pp > 1) {  // every rank builds its stage's group at the same point
      CommInit g = init;
      g.group = "tp.stage" + std::to_string(s.plan.world.pp_rank());
      g.rank = s.plan.world.tp_rank();
      g.size = cfg.world.tp;
      g.world_rank = s.env.rank;
      g.world_size = s.env.size;
      s.tp_group_comm = s.registry->create_comm(cfg.plugins.comm);
      s.tp_group_comm->init(g);
      s.tp_comm = s.tp_group_comm.get();
    }
  }
  s.weights = s.registry->create_weights(s.weights_plugin);
  if (cfg.plugins.weights_group_size >= 0) {
    try {
      s.weights->set_option("group_size", std::to_string(cfg.plugins.weights_group_size));
    } catch (const std::invalid_argument& e) {
      throw ConfigError(config_message(cfg, "plugins.weights_group_size", e.what()));
    }
  }
  // threads: 0 under Slurm: --cpus-per-task when given (a bare srun binds nothing, and every rank would otherwise
  // start a thread per core of the node).
  int threads = cfg.threads;
  if (const char* cpt = std::getenv("SLURM_CPUS_PER_TASK"); threads == 0 && cpt && std::atoi(cpt) > 0)
    threads = std::atoi(cpt);
  s.pool = std::make_unique<ThreadPool>(threads);
  const auto t0 = std::chrono::steady_clock::now();
  s.stage = std::make_unique<LlamaStage>(*s.model, s.plan, *s.weights, *s.pool, s.tp_comm, n_slots, max_ctx);
  s.weight_load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace hpcinfer
