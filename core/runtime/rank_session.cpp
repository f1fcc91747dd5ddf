#include "core/runtime/rank_session.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <vector>

#include "core/config/config_error.hpp"
#include "core/config/load_config.hpp"
#include "core/model/cost_model.hpp"
#include "core/results/clock_sync.hpp"
#include "core/results/host_info.hpp"
#include "core/model/model_layout.hpp"
#include "core/rendezvous/kv_store.hpp"
#include "core/runtime/device_communicator.hpp"

namespace hpcinfer {

RankSession::~RankSession() {
  stage.reset();
  group_comms.clear();
  comm.reset();
  backend.reset();
}

int RankSession::threads() const {
  Executor* ex = backend ? backend->host_threads() : nullptr;
  return ex ? ex->threads() : 0;
}

std::unique_ptr<Tokenizer> open_tokenizer(const std::string& tokenizer_path, const ModelSource& model) {
  std::string path = tokenizer_path.empty() ? model.tokenizer_path() : tokenizer_path;
  if (path.empty())
    throw std::runtime_error(model.path() + ": no tokenizer found beside the model; set model.tokenizer (--tokenizer)");
  if (model.format() == "llama2c" && std::filesystem::path(path).extension() == ".bin")
    return load_llama2c_tokenizer(path, int(model.desc().vocab));
  return load_tokenizer(path);
}

std::string resolve_weights_plugin(const std::string& name, const ModelSource& model, const std::string& device) {
  if (name != "auto") return name;
  // The checkpoint's own precision where a plugin holds it exactly: bf16, Q8_0 blocks (int8), Q4_0 blocks (int4;
  // on a device backend, which has no 4-bit matmul, int8: the nearest it packs); anything else (f32, f16, Q4_1 with
  // its per-block minimum) in f32.
  const std::string probe = model.has_tensor("layers.0.wq") ? "layers.0.wq" : "tok_embeddings";
  switch (model.tensor(probe).dtype) {
    case DType::bf16: return "bf16";
    case DType::q8_0: return "int8";
    case DType::q4_0: return device == "cpu" ? "int4" : "int8";
    default: return "f32";
  }
}

std::string rendezvous_spec(const ExperimentConfig& cfg, const LaunchEnv& env) {
  if (!cfg.world.rendezvous.empty()) return cfg.world.rendezvous;
  if (env.job_id.empty())
    throw std::runtime_error("world.rendezvous is not set and no job id is known (HPCINFER_JOB_ID / SLURM_JOB_ID); "
                             "set world.rendezvous to file:///shared/dir or tcp://host:port");
  auto dir = std::filesystem::absolute(std::filesystem::path(cfg.outputs.dir) / ".rendezvous" / env.job_id);
  return "file://" + dir.string();
}

StrategyOptions strategy_options(const ExperimentConfig& cfg) {
  StrategyOptions opt;
  opt.layer_split = cfg.world.layer_split;
  opt.replicate_kv_heads = cfg.world.replicate_kv_heads;
  opt.vocab_parallel = cfg.world.vocab_parallel;
  opt.expert_parallel = cfg.world.expert_parallel;
  opt.moe_alltoall = cfg.world.moe_comm == "alltoall";
  return opt;
}

std::unique_ptr<RankSession> describe_rank(const ExperimentConfig& cfg, const LaunchEnv& env) {
  return describe_rank(cfg, env, open_model(cfg.model.path, cfg.model.format));
}

namespace {

// The device, the weight format and the transport must work together; refused here, before any weights move.
void check_combination(RankSession& s) {
  const ExperimentConfig& cfg = s.cfg;
  auto named = [&](const char* key, auto make) {  // a plugin that cannot be had is the key's fault
    try {
      return make();
    } catch (const PluginError& e) {
      throw ConfigError(config_message(cfg, key, e.what()));
    }
  };
  s.backend = named("device", [&] { return s.registry->create_backend(cfg.device); });
  s.weights = named("plugins.weights", [&] { return s.registry->create_weights(s.weights_plugin); });
  if (cfg.plugins.weights_group_size >= 0) {
    try {
      s.weights->set_option("group_size", std::to_string(cfg.plugins.weights_group_size));
    } catch (const std::invalid_argument& e) {
      throw ConfigError(config_message(cfg, "plugins.weights_group_size", e.what()));
    }
  }
  if (s.env.size > 1) {
    const auto comm = named("plugins.comm", [&] { return s.registry->create_comm(cfg.plugins.comm); });
    // A host transport serves a device backend through staging buffers (DeviceCommunicator); a device transport
    // cannot serve the host backend.
    if (comm->memory_space() != MemorySpace::host && s.backend->memory_space() == MemorySpace::host)
      throw ConfigError(config_message(
          cfg, "plugins.comm",
          "comm plugin '" + cfg.plugins.comm + "' moves " + memory_space_name(comm->memory_space()) +
              " memory, but device '" + cfg.device + "' computes in " + memory_space_name(s.backend->memory_space()) +
              " memory (gloo or mpi fits it)"));
  }
  if (!s.weights->supports_backend(s.backend->name()))
    throw ConfigError(config_message(cfg, "plugins.weights", "weights plugin '" + s.weights_plugin +
                                                                 "' does not pack for device '" + cfg.device + "'"));
}

}  // namespace

std::unique_ptr<RankSession> describe_rank(const ExperimentConfig& cfg, const LaunchEnv& env,
                                          std::unique_ptr<ModelSource> model) {
  auto s = std::make_unique<RankSession>();
  s->cfg = cfg;
  s->env = env;
  s->job = env;
  s->model = std::move(model);
  s->registry = std::make_unique<PluginRegistry>(PluginRegistry::for_config(cfg));
  s->strategy = s->registry->create_strategy(cfg.plugins.strategy);
  s->layout = model_layout(s->model->desc());
  s->plan = s->strategy->plan(s->layout, World{cfg.world.tp, cfg.world.pp, env.rank}, strategy_options(cfg));
  s->weights_plugin = resolve_weights_plugin(cfg.plugins.weights, *s->model, cfg.device);
  check_combination(*s);
  return s;
}

int run_context(int64_t longest_prompt, int64_t max_new_tokens, int max_seq_len) {
  return int(std::min<int64_t>(longest_prompt + std::max<int64_t>(max_new_tokens, 0) + 1, max_seq_len));
}

void connect_rank(RankSession& s) {
  const ExperimentConfig& cfg = s.cfg;
  if (s.store || s.comm) return;
  const auto timeout = std::chrono::milliseconds(int64_t(cfg.world.timeout_s) * 1000);
  if (s.job.size > 1)
    s.store = make_store(rendezvous_spec(cfg, s.job), s.job.rank, s.job.size, timeout, cfg.world.interface);
  if (s.env.size > 1) {
    // A device backend's transports wait for its queued ops and stage what is not in their memory space.
    auto make_comm = [&]() -> std::unique_ptr<Communicator> {
      auto c = s.registry->create_comm(cfg.plugins.comm);
      if (s.backend->memory_space() == MemorySpace::host) return c;
      return std::make_unique<DeviceCommunicator>(std::move(c), *s.backend);
    };
    s.comm = make_comm();
    CommInit init;
    init.rank = s.env.rank;
    init.size = s.env.size;
    init.store = s.store.get();
    init.prefix = "hpcinfer/" + (s.env.job_id.empty() ? std::string("job") : s.env.job_id);
    init.timeout = timeout;
    init.interface_name = cfg.world.interface;
    init.device = cfg.device == "cpu" ? -1 : s.env.local_rank;
    s.comm->init(init);
    // The plan's groups, in plan order (every rank creates its groups at the same point); a group of the whole
    // world is the world communicator.
    for (const CommGroup& g : s.plan.groups) {
      if (int(g.ranks.size()) == s.env.size) continue;
      const auto me = std::find(g.ranks.begin(), g.ranks.end(), s.env.rank);
      if (me == g.ranks.end())
        throw std::runtime_error("plan: rank " + std::to_string(s.env.rank) + " is not in its own group " + g.name);
      CommInit gi = init;
      gi.group = g.name;
      gi.rank = int(me - g.ranks.begin());
      gi.size = int(g.ranks.size());
      gi.world_rank = s.env.rank;
      gi.world_size = s.env.size;
      s.group_comms.push_back(make_comm());
      s.group_comms.back()->init(gi);
    }
  }
}

// The plan's groups by name: the world communicator for a group of the whole world, else the group's own.
std::map<std::string, Communicator*> plan_groups(RankSession& s) {
  std::map<std::string, Communicator*> groups;
  if (s.env.size <= 1) return groups;
  size_t next = 0;
  for (const CommGroup& g : s.plan.groups)
    groups[g.name] = int(g.ranks.size()) == s.env.size ? s.comm.get() : s.group_comms.at(next++).get();
  return groups;
}

namespace {

// What the ranks on this rank's host (one running kernel: same boot id, so one pool of memory) need together, and
// how many they are. Collective over the world: every rank calls it at the same point.
std::pair<double, int> host_share_needed(RankSession& s, double mine) {
  if (!s.comm || s.env.size <= 1) return {mine, 1};
  struct Need {
    uint64_t host;
    double bytes;
  };
  const Need me{std::hash<std::string>{}(boot_id()), mine};
  std::vector<Need> all(size_t(s.env.size));
  s.comm->allgather(&me, sizeof me, all.data());
  double sum = 0;
  int ranks = 0;
  for (const Need& n : all)
    if (n.host == me.host) sum += n.bytes, ++ranks;
  return {sum, ranks};
}

}  // namespace

void open_rank(RankSession& s, int n_slots, int max_ctx) {
  const ExperimentConfig& cfg = s.cfg;
  connect_rank(s);
  const std::map<std::string, Communicator*> groups = plan_groups(s);
  // threads: 0 under Slurm: --cpus-per-task when given (a bare srun binds nothing, and every rank would otherwise
  // start a thread per core of the node).
  int threads = cfg.threads;
  if (const char* cpt = std::getenv("SLURM_CPUS_PER_TASK"); threads == 0 && cpt && std::atoi(cpt) > 0)
    threads = std::atoi(cpt);
  s.backend->init({threads, cfg.device == "cpu" ? -1 : s.env.local_rank, s.env.rank});
  // A device (or host) with less free memory than the plan needs is refused before any weights move (the planner's
  // figures): a clear message instead of std::bad_alloc after minutes of loading.
  const DeviceMemoryStats dm = s.backend->memory_stats();
  const bool host_memory = s.backend->memory_space() == MemorySpace::host;
  const double host_free = host_memory ? host_available_bytes() : 0;
  if (dm.total > 0 || host_memory) {  // the same branch on every rank: host_share_needed is collective
    const RankCost cost = rank_cost(s.model->desc(), s.plan, s.weights.get());
    const MemoryPlan need = memory_plan(s.model->desc(), s.plan, cost, n_slots, max_ctx, double(max_ctx), 1);
    const double free_bytes = dm.total > 0 ? double(dm.total - dm.reserved) : host_free;
    auto gb = [](double b) {
      char t[32];
      std::snprintf(t, sizeof t, "%.2f GB", b / 1e9);
      return std::string(t);
    };
    // Host memory is one pool for every rank on the host: their plans are summed (a device is this rank's own).
    const auto [host_need, host_ranks] =
        dm.total > 0 ? std::pair<double, int>{need.total(), 1} : host_share_needed(s, need.total());
    const std::string needs = host_ranks > 1 ? "the plans of the " + std::to_string(host_ranks) +
                                                   " ranks on this host need " + gb(host_need) +
                                                   " in all; this rank's plan needs "
                                             : "the plan needs ";
    if (free_bytes > 0 && host_need > free_bytes)
      throw std::runtime_error("rank " + std::to_string(s.env.rank) + ": " + s.backend->description() + " has " +
                               gb(free_bytes) + " free, " + needs + gb(need.total()) + " (weights " +
                               gb(need.weights) + ", KV cache " + gb(need.kv_cache) + ", activations and workspace " +
                               gb(need.activations + need.workspace) +
                               " for " + std::to_string(n_slots) + " slots of " + std::to_string(max_ctx) +
                               " tokens): use more ranks (world.tp / world.pp), int8 weights, or fewer slots "
                               "(batching.batch_size) / a shorter context");
  }
  const auto t0 = std::chrono::steady_clock::now();
  s.stage = std::make_unique<ModelStage>(*s.model, s.plan, *s.weights, *s.backend, groups, n_slots, max_ctx,
                                         s.cfg.plugins.weights_cache);
  s.weight_load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.weight_read_s = s.stage->weight_read_s();
  const ModelStage& st = *s.stage;
  if (st.weight_cache() == "hit")
    std::fprintf(stderr, "weights: %.3f GB mapped from the packed-weight cache %s\n", double(st.weight_bytes()) / 1e9,
                 st.weight_cache_file().c_str());
  else if (st.weight_cache() != "off" && st.weight_cache_write_s() > 0)
    std::fprintf(stderr, "weights: packed-weight cache %s (%s) written in %.3f s\n", st.weight_cache_file().c_str(),
                 st.weight_cache().c_str(), st.weight_cache_write_s());
}

}  // namespace hpcinfer
