#include "core/serve/serve_session.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/runtime/pipeline_engine.hpp"
#include "core/runtime/rank_session.hpp"
#include "core/serve/http_server.hpp"

namespace hpcinfer::serve {
namespace {

std::string store_key(const LaunchEnv& job, int replica) {
  return "hpcinfer/" + (job.job_id.empty() ? std::string("job") : job.job_id) + "/serve/replica/" +
         std::to_string(replica);
}

std::string model_name(const ExperimentConfig& cfg) {
  if (!cfg.serve.model_name.empty()) return cfg.serve.model_name;
  std::filesystem::path p(cfg.model.path);
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

}  // namespace

int serve(const ExperimentConfig& cfg, const LaunchEnv& job) {
  // SIGTERM / SIGINT are taken by one thread (sigwait): blocked here, before any other thread exists.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const int group = cfg.world.tp * cfg.world.pp, replica = job.rank / group;
  LaunchEnv env = job;  // this rank in its replica's world
  env.rank = job.rank % group;
  env.size = group;
  if (cfg.world.dp > 1) env.job_id = (job.job_id.empty() ? "job" : job.job_id) + ".replica" + std::to_string(replica);
  auto session = describe_rank(cfg, env);
  RankSession& s = *session;
  s.job = job;
  s.tokenizer = open_tokenizer(cfg.model.tokenizer, *s.model);
  const int slots = cfg.batching.batch_size;
  const int max_ctx = cfg.serve.max_context > 0 ? cfg.serve.max_context
                                                : int(std::min<int64_t>(s.model->desc().max_seq_len, 4096));
  const bool leader = env.rank == 0, front = job.rank == 0;

  auto metrics = std::make_shared<ServeMetrics>(slots);
  auto book = std::make_shared<RequestBook>(slots, cfg.serve.max_waiting, *metrics);
  ApiContext ctx;
  ctx.tok = s.tokenizer.get();
  ctx.model_name = model_name(cfg);
  ctx.max_ctx = max_ctx;
  ctx.vocab = s.model->desc().vocab;
  ctx.add_bos = cfg.generation.add_bos;
  ctx.defaults.max_new_tokens = cfg.generation.max_new_tokens;
  ctx.defaults.sampling = {cfg.generation.temperature, cfg.generation.top_k, cfg.generation.top_p, cfg.generation.min_p};
  ctx.defaults.stop_strings = cfg.generation.stop;
  std::unique_ptr<Replicas> replicas;
  if (front && cfg.world.dp > 1) replicas = std::make_unique<Replicas>(cfg.world.dp, slots + cfg.serve.max_waiting);

  // The leaders listen before the weights load: /health says "loading" meanwhile, a port in use fails at once.
  std::unique_ptr<OpenAiServer> server;
  int port = 0;
  if (leader) {
    ServerOptions so;
    so.host = front ? cfg.serve.host : "0.0.0.0";
    so.port = front ? cfg.serve.port : 0;
    so.request_timeout_s = cfg.serve.request_timeout_s;
    so.connection_threads = std::max(64, 2 * (slots + cfg.serve.max_waiting)) + 8;
    server = std::make_unique<OpenAiServer>(so, ctx, *book, *metrics, replicas.get());
    port = server->bind();
    server->start();
    if (front) {
      const bool any = cfg.serve.host == "0.0.0.0" || cfg.serve.host == "::";  // every address: name the host
      const std::string url = "http://" + (any ? host_name() : cfg.serve.host) + ":" + std::to_string(port);
      std::filesystem::create_directories(cfg.outputs.dir);
      std::ofstream(std::filesystem::path(cfg.outputs.dir) / "server.json")
          << nlohmann::json{{"url", url}, {"model", ctx.model_name}, {"pid", getpid()}}.dump() << "\n";
      log_line(job, "serving " + ctx.model_name + " at " + url + " (loading weights; GET /health answers 200 when ready)");
    }
  }
  std::thread([book, leader, job, stop_signals] {
    int sig = 0;
    if (sigwait(&stop_signals, &sig) != 0) return;
    log_line(job, std::string(sig == SIGTERM ? "SIGTERM" : "SIGINT") +
                      (leader ? ": no new requests; finishing the running ones" : ": waiting for the leader's shutdown"));
    if (leader) book->close();
  }).detach();

  open_rank(s, slots, max_ctx);
  log_line(job, "replica " + std::to_string(replica) + " rank " + std::to_string(env.rank) + ": layers [" +
                    std::to_string(s.plan.layer_begin) + ", " + std::to_string(s.plan.layer_end) + "), " +
                    std::to_string(s.stage->weight_bytes() >> 20) + " MiB of weights in " +
                    std::to_string(s.weight_load_s) + " s");
  std::thread replica_waiter;
  if (leader && !front) {
    const std::string address = host_name() + ":" + std::to_string(port);
    s.store->set(store_key(job, replica), std::vector<uint8_t>(address.begin(), address.end()));
  }
  if (replicas) {
    replicas->set_ready(0, "");
    KeyValueStore* store = s.store.get();
    Replicas* r = replicas.get();
    const auto timeout = std::chrono::milliseconds(int64_t(cfg.world.timeout_s) * 1000 * 10);
    replica_waiter = std::thread([store, r, job, timeout, dp = cfg.world.dp] {
      for (int k = 1; k < dp; ++k) {
        try {
          const std::vector<uint8_t> v = store->get(store_key(job, k), timeout);
          r->set_ready(k, std::string(v.begin(), v.end()));
          log_line(job, "replica " + std::to_string(k) + " ready at " + std::string(v.begin(), v.end()));
        } catch (const std::exception& e) {
          log_line(job, "replica " + std::to_string(k) + " never published its address: " + e.what());
        }
      }
    });
  }

  EngineOptions opt;
  opt.batch_size = slots;
  opt.micro_batches = cfg.batching.micro_batches;
  opt.stop_ids = s.tokenizer->stop_ids();
  opt.live = true;
  opt.keepalive_s = std::clamp(cfg.world.timeout_s / 3.0, 0.5, 10.0);
  PipelineEngine engine(*s.stage, s.comm.get(), s.tokenizer.get(), opt);
  if (s.comm) s.comm->barrier();
  if (server) server->set_ready(true);
  if (leader) log_line(job, "replica " + std::to_string(replica) + " ready: " + std::to_string(slots) + " slots of " +
                                std::to_string(max_ctx) + " tokens");
  const std::vector<Request> none;
  FixedFeed no_requests(none);  // only the leader's feed is read
  try {
    if (leader) engine.run(*book, nullptr, [&](const std::vector<TokenEvent>& ev) { book->deliver(ev); });
    else engine.run(no_requests, nullptr);
  } catch (const std::exception& e) {
    if (leader) book->fail_all(e.what());
    if (server) server->stop();
    if (replica_waiter.joinable()) replica_waiter.detach();
    throw;
  }
  if (server) server->stop();
  if (replica_waiter.joinable()) replica_waiter.detach();
  const EngineStats& st = engine.stats();
  log_line(job, "stopped: " + std::to_string(st.prompt_tokens) + " prompt and " + std::to_string(st.generated_tokens) +
                    " generated tokens in " + std::to_string(st.forward_passes) + " forward passes");
  return 0;
}

}  // namespace hpcinfer::serve
