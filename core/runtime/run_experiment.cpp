#include "core/runtime/run_experiment.hpp"

#include "core/runtime/progress.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/config/load_config.hpp"
#include "core/config/config_error.hpp"
#include "core/results/clock_sync.hpp"
#include "core/results/output_dir.hpp"
#include "core/results/results_bundle.hpp"
#include "core/runtime/pipeline_engine.hpp"
#include "core/runtime/progress.hpp"
#include "core/runtime/rank_session.hpp"
#include "core/tokenizer/prompt_ids.hpp"

namespace hpcinfer {

size_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return size_t(ru.ru_maxrss) * 1024;
}

namespace {
// User and system CPU seconds of this process so far (every thread).
std::pair<double, double> cpu_seconds() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) * 1e-6; };
  return {sec(ru.ru_utime), sec(ru.ru_stime)};
}

// The counters of every communicator of this rank: the world's and its plan's groups'.
CommStats comm_totals(const RankSession& s) {
  CommStats t;
  std::vector<const Communicator*> all{s.comm.get()};
  for (const auto& g : s.group_comms) all.push_back(g.get());
  for (const Communicator* c : all)
    if (c) {
      const CommStats x = c->stats();
      t.bytes_sent += x.bytes_sent;
      t.bytes_received += x.bytes_received;
      t.seconds += x.seconds;
      t.calls += x.calls;
    }
  return t;
}
}  // namespace

GenerationParams generation_params(const ExperimentConfig& cfg, int index) {
  GenerationParams p;
  p.max_new_tokens = cfg.generation.max_new_tokens;
  p.sampling = {cfg.generation.temperature, cfg.generation.top_k, cfg.generation.top_p, cfg.generation.min_p};
  p.seed = cfg.generation.seed + uint64_t(index) * 0x9E3779B97F4A7C15ull;
  p.stop_strings = cfg.generation.stop;
  p.logprobs = cfg.outputs.logprobs > 0;
  p.top_logprobs = cfg.outputs.logprobs;
  return p;
}

namespace {

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Rank 0's claim on outputs.dir: the lock that keeps a second job out for this job's lifetime, and, when the
// directory holds completions to resume, the check that they are of this configuration; then config.yaml.
std::unique_ptr<OutputDirLock> claim_outputs(const ExperimentConfig& cfg) {
  namespace fs = std::filesystem;
  auto lock = std::make_unique<OutputDirLock>(cfg.outputs.dir);
  const fs::path dir(cfg.outputs.dir), conf = dir / "config.yaml";
  const std::string now = dump_config_yaml(cfg);
  if (!cfg.outputs.fresh && fs::exists(dir / "completions.jsonl") && fs::exists(conf)) {
    const std::string diff = config_difference(read_text(conf), now);
    if (!diff.empty())
      throw ConfigError(config_message(
          cfg, "outputs.dir",
          cfg.outputs.dir + " holds completions of another configuration (config.yaml: " + diff +
              "): rerun with --fresh (outputs.fresh: true) to start over there, or choose another outputs.dir"));
  }
  write_file_atomic(conf, now);
  return lock;
}

// The ids an earlier run into the same outputs.dir finished, as the rank that writes completions.jsonl read them
// (cutting a torn last line), on every rank: all ranks must drop the same requests.
std::set<std::string> finished_ids(RankSession& s, bool writer, const std::filesystem::path& file, bool fresh) {
  std::string text;
  if (writer && !fresh) {
    const FinishedCompletions f = finished_completions(file);
    if (f.dropped_torn_line) log_line(s.env, "resume: cut a torn last line off " + file.string());
    if (!f.ids.empty()) text = nlohmann::json(f.ids).dump();
  }
  if (s.comm && s.env.size > 1) {
    const int mine = writer ? 1 : 0;
    std::vector<int> flags(size_t(s.env.size), 0);
    s.comm->allgather(&mine, sizeof(int), flags.data());
    const int root = int(std::find(flags.begin(), flags.end(), 1) - flags.begin());
    if (root >= s.env.size) throw std::runtime_error("plan: no rank writes completions.jsonl");
    uint64_t n = text.size();
    s.comm->broadcast(&n, sizeof n, root);
    text.resize(size_t(n));
    if (n > 0) s.comm->broadcast(text.data(), size_t(n), root);
  }
  if (text.empty()) return {};
  return nlohmann::json::parse(text).get<std::set<std::string>>();
}

// A request that fails alone (a prompt the context cannot hold): its error record in completions.jsonl.
Completion failed_completion(const Request& r, const std::string& why) {
  Completion c;
  c.id = r.id;
  c.index = r.index;
  c.prompt = r.prompt.size() > 200 ? r.prompt.substr(0, 200) + "..." : r.prompt;
  c.prompt_tokens = int(r.prompt_ids.size());
  c.finish_reason = "error";
  c.error = why;
  return c;
}

}  // namespace

int run_experiment(const ExperimentConfig& cfg, const LaunchEnv& env) {
  namespace fs = std::filesystem;
  const auto t_start = std::chrono::steady_clock::now();
  const auto cpu_start = cpu_seconds();
  const std::unique_ptr<OutputDirLock> lock = env.rank == 0 ? claim_outputs(cfg) : nullptr;
  fs::create_directories(fs::path(cfg.outputs.dir) / "metrics");

  auto session = describe_rank(cfg, env);
  RankSession& s = *session;
  const auto t_tok = std::chrono::steady_clock::now();
  if (cfg.inputs.prompts.empty()) throw std::runtime_error("inputs.prompts is not set: nothing to run");
  std::vector<std::string> warnings;
  std::vector<Request> requests = read_prompts_jsonl(cfg.inputs.prompts, cfg.inputs.on_bad_line, &warnings);
  for (const auto& w : warnings) log_line(env, "warning: " + w);
  // The tokenizer, unless every prompt comes as ids and none is found (models saved without one).
  const bool all_ids = std::all_of(requests.begin(), requests.end(), [](const Request& r) { return r.ids_given; });
  if (!all_ids || !cfg.model.tokenizer.empty() || !s.model->tokenizer_path().empty())
    s.tokenizer = open_tokenizer(cfg.model.tokenizer, *s.model);
  if (!s.tokenizer && !cfg.generation.stop.empty())
    throw std::runtime_error("generation.stop needs a tokenizer (set model.tokenizer): the prompts are ids only");
  const int64_t vocab = s.model->desc().vocab;
  for (Request& r : requests) {
    if (!r.ids_given) r.prompt_ids = prompt_ids(*s.tokenizer, r.prompt, {cfg.generation.add_bos, cfg.inputs.chat, false});
    for (int id : r.prompt_ids)
      if (id >= vocab)
        throw std::runtime_error(cfg.inputs.prompts + ": request " + r.id + ": prompt id " + std::to_string(id) +
                                 " outside the model's vocabulary of " + std::to_string(vocab));
  }
  const double tokenize_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_tok).count();

  // Connected before the weights load: the finished requests of an earlier run (resume) decide the context.
  connect_rank(s);
  const bool writes_completions = s.plan.has_head && s.plan.world.tp_rank() == 0;
  const fs::path completions_file = fs::path(cfg.outputs.dir) / "completions.jsonl";
  const std::set<std::string> finished = finished_ids(s, writes_completions, completions_file, cfg.outputs.fresh);
  // Requests that fail alone (their own error record; the others run): an empty prompt, or one the model's context
  // cannot hold. The KV cache is sized by the longest prompt that runs, never beyond the model's max_seq_len.
  const int max_seq = s.model->desc().max_seq_len;
  std::vector<Request> todo;
  std::vector<Completion> failed;
  int longest = 1;
  for (Request& r : requests) {
    if (finished.count(r.id)) continue;
    if (r.prompt_ids.empty() || int64_t(r.prompt_ids.size()) >= max_seq) {
      failed.push_back(failed_completion(
          r, r.prompt_ids.empty() ? "empty prompt (no tokens)"
                                  : "prompt of " + std::to_string(r.prompt_ids.size()) +
                                        " tokens does not fit the model's context of " + std::to_string(max_seq) +
                                        " tokens (max_seq_len)"));
      continue;
    }
    longest = std::max(longest, int(r.prompt_ids.size()));
    todo.push_back(std::move(r));
  }
  const int resumed = int(requests.size() - todo.size() - failed.size());
  if (resumed > 0)
    log_line(env, "resume: " + std::to_string(resumed) + " of " + std::to_string(requests.size()) +
                      " requests already in " + completions_file.string() + " (--fresh starts over)");
  for (const Completion& c : failed) log_line(env, "request " + c.id + " fails alone: " + c.error);
  requests = std::move(todo);
  const int max_ctx = run_context(longest, cfg.generation.max_new_tokens, max_seq);
  log_line(env, "layers [" + std::to_string(s.plan.layer_begin) + ", " + std::to_string(s.plan.layer_end) +
                    "), weights " + s.weights_plugin + ", comm " + (env.size > 1 ? cfg.plugins.comm : "none") +
                    ", " + std::to_string(requests.size()) + " requests");
  open_rank(s, cfg.batching.batch_size, max_ctx);
  log_line(env, "weights packed: " + std::to_string(s.stage->weight_bytes() >> 20) + " MiB in " +
                    std::to_string(s.weight_load_s) + " s");

  for (Request& r : requests) r.params = generation_params(cfg, r.index);
  EngineOptions opt;
  opt.batch_size = cfg.batching.batch_size;
  opt.micro_batches = cfg.batching.micro_batches;
  opt.stop_ids = s.tokenizer ? s.tokenizer->stop_ids() : std::vector<int>{s.model->desc().eos_id};
  if (cfg.outputs.keep_logits) opt.logits_dir = (fs::path(cfg.outputs.dir) / "logits").string();
  PipelineEngine engine(*s.stage, s.comm.get(), s.tokenizer.get(), opt);

  std::unique_ptr<CompletionWriter> writer;
  if (writes_completions) {
    writer = std::make_unique<CompletionWriter>(completions_file.string(), /*append=*/!cfg.outputs.fresh);
    for (const Completion& c : failed) writer->write(c);
  }
  int done = 0;
  nlohmann::json records = writer ? nlohmann::json::array() : nlohmann::json(nullptr);  // for raw.json
  // Every rank starts its engine clock right after this barrier (so waiting for a slower rank's weights is not counted
  // as pipeline idle or communication time); trace.json aligns the ranks' clocks exactly with the offsets measured
  // here (core/results/clock_sync.hpp).
  const ClockOffset clock = measure_clock_offset(s.comm.get(), env.rank, env.size);
  if (s.comm) s.comm->barrier();
  const CommStats cs0 = comm_totals(s);
  const auto epoch_unix = std::chrono::system_clock::now();
  ProgressReporter progress(
      int(requests.size()), 10.0,
      [] { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); },
      [&](const std::string& line) { log_line(env, line); });
  engine.run(requests, [&](const Completion& c) {
    writer->write(c);
    progress.request_done(c.token_ids.size());
    records.push_back(request_record(c));
    ++done;
  });
  if (s.comm) s.comm->barrier();
  const EngineStats& st = engine.stats();
  CommStats cs = comm_totals(s);  // since the engine start, the closing barrier included
  cs.bytes_sent -= cs0.bytes_sent;
  cs.bytes_received -= cs0.bytes_received;
  cs.seconds -= cs0.seconds;
  cs.calls -= cs0.calls;
  const auto cpu_end = cpu_seconds();
  const DeviceMemoryStats dm = s.backend->memory_stats();  // zeros on the cpu backend
  nlohmann::json m{
      {"rank", env.rank}, {"world_size", env.size}, {"host", env.host}, {"local_rank", env.local_rank},
      {"launcher", env.source},
      {"tp_rank", s.plan.world.tp_rank()}, {"pp_rank", s.plan.world.pp_rank()},
      {"layers", {s.plan.layer_begin, s.plan.layer_end}}, {"weights_plugin", s.weights_plugin},
      {"comm_plugin", env.size > 1 ? cfg.plugins.comm : "none"}, {"threads", s.threads()}, {"device", s.backend->description()},
      {"device_memory_allocated_bytes", dm.allocated}, {"device_memory_peak_bytes", dm.peak},
      {"device_memory_reserved_bytes", dm.reserved}, {"device_memory_total_bytes", dm.total},
      {"weight_bytes", s.stage->weight_bytes()}, {"kv_cache_bytes", s.stage->kv_bytes()},
      {"kv_bytes_per_token", double(s.stage->kv_bytes()) / std::max(1.0, double(s.stage->slots()) * s.stage->max_ctx())},
      {"weight_load_s", s.weight_load_s}, {"weight_read_s", s.weight_read_s},
      {"weight_pack_s", s.weight_load_s - s.weight_read_s}, {"weight_cache", s.stage->weight_cache()},
      {"weight_cache_write_s", s.stage->weight_cache_write_s()}, {"tokenize_s", tokenize_s},
      {"engine_wall_s", st.wall_s}, {"compute_s", st.compute_s}, {"send_s", st.send_s},
      {"idle_recv_wait_s", st.recv_wait_s}, {"tp_allreduce_s", st.allreduce_s}, {"forward_passes", st.forward_passes},
      {"prompt_tokens", st.prompt_tokens}, {"generated_tokens", st.generated_tokens},
      {"completions_written", done}, {"requests", requests.size()},
      {"requests_failed", failed.size()}, {"requests_resumed", resumed},
      {"decode_tok_s", st.wall_s > 0 ? double(st.generated_tokens) / st.wall_s : 0.0},
      {"comm_bytes_sent", cs.bytes_sent}, {"comm_bytes_received", cs.bytes_received},
      {"comm_s", cs.seconds}, {"comm_calls", cs.calls}, {"peak_rss_bytes", peak_rss_bytes()},
      {"cpu_user_s", cpu_end.first - cpu_start.first}, {"cpu_sys_s", cpu_end.second - cpu_start.second},
      {"epoch_unix_s", std::chrono::duration<double>(epoch_unix.time_since_epoch()).count()},
      {"epoch_steady_s", engine.epoch()}, {"clock_offset_s", clock.offset_s}, {"clock_rtt_s", clock.rtt_s},
      {"clock_sync", clock.method},
      {"spans_recorded", engine.spans().spans().size()}, {"spans_dropped", engine.spans().dropped()},
      {"total_wall_s", std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count()}};
  write_file_atomic(fs::path(cfg.outputs.dir) / "metrics" / ("rank_" + std::to_string(env.rank) + ".json"),
                    m.dump(2) + "\n");
  log_line(env, "done: " + std::to_string(st.generated_tokens) + " tokens in " + std::to_string(st.wall_s) + " s");

  // The results bundle: every rank's report goes to rank 0 through the communicator (results_bundle.hpp).
  const auto reports = gather_reports(s.comm.get(), env.rank, env.size,
                                      rank_report(m, engine.spans(), records, env.local_rank == 0 || env.rank == 0));
  if (env.rank == 0) {
    for (const auto& w : write_results_bundle(cfg.outputs.dir, cfg, env, reports)) log_line(env, "warning: " + w);
    log_line(env, "results bundle written: " + cfg.outputs.dir + " (summary.json, raw.json, trace.json, ...)");
  }
  return 0;
}

}  // namespace hpcinfer
