#include "core/runtime/pipeline_engine.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <chrono>
#include <cstdlib>
#include <stdexcept>

namespace hpcinfer {

PipelineEngine::PipelineEngine(ModelStage& stage, Communicator* comm, const Tokenizer* tok, EngineOptions opt)
    : stage_(stage), comm_(comm), tok_(tok), opt_(std::move(opt)) {
  if (opt_.batch_size < 1 || opt_.micro_batches < 1 || opt_.micro_batches > opt_.batch_size)
    throw std::invalid_argument("batching: need 1 <= micro_batches <= batch_size");
}

PipelineEngine::~PipelineEngine() {
  for (auto& [index, f] : logit_files_) std::fclose(f);
}

// Test hook for failure tests: HPCINFER_FAULT_RANK=r HPCINFER_FAULT_AFTER_PASSES=n makes world rank r vanish
// (_exit, no cleanup, like a crashed node) after its n-th forward pass.
void PipelineEngine::maybe_inject_fault() const {
  static const char* rank = std::getenv("HPCINFER_FAULT_RANK");
  static const char* after = std::getenv("HPCINFER_FAULT_AFTER_PASSES");
  if (rank && after && std::atoi(rank) == stage_.plan().world.rank && stats_.forward_passes >= std::atoi(after))
    _exit(42);
}

int PipelineEngine::peer(const char* anchor, CommStep::Kind kind) const {
  const CommStep* s = stage_.plan().step(anchor, kind);
  if (!s || s->peers.empty())
    throw std::runtime_error(std::string("plan of rank ") + std::to_string(stage_.plan().world.rank) + " has no " +
                             comm_step_name(kind) + " step at " + anchor);
  return s->peers[0];
}

double PipelineEngine::now() const {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

void PipelineEngine::run(const std::vector<Request>& requests, const OnComplete& on_complete) {
  FixedFeed feed(requests);
  run(feed, on_complete);
}

void PipelineEngine::run(RequestFeed& feed, const OnComplete& on_complete, const OnEvents& on_events) {
  t0_ = now();
  spans_.clear();
  live_.clear();
  pending_cancel_.clear();
  in_flight_.assign(size_t(opt_.micro_batches), 0);
  const double allreduce0 = stage_.allreduce_s();
  const RankPlan& p = stage_.plan();
  next_stage_ = p.has_head ? -1 : peer("stage.output", CommStep::Kind::send_activations);
  if (!p.has_embedding) run_later_stage(on_complete);
  else if (opt_.live && p.world.tp_rank() != 0) run_follower(on_complete);
  else run_first_stage(feed, on_complete, on_events);
  stats_.wall_s = now() - t0_;
  stats_.allreduce_s = stage_.allreduce_s() - allreduce0;
}

std::vector<int> PipelineEngine::followers() const {
  const World& w = stage_.plan().world;
  std::vector<int> out;
  for (int t = 1; t < w.tp; ++t) out.push_back(w.rank_of(t, w.pp_rank()));
  return out;
}

// First stage (the leader of a live feed, or any first-stage rank of a fixed one): the scheduler. Visits the groups
// round-robin; a group's next batch waits for its sampled tokens.
void PipelineEngine::run_first_stage(RequestFeed& feed, const OnComplete& done, const OnEvents& on_events) {
  const RankPlan& p = stage_.plan();
  const int M = opt_.micro_batches;
  std::vector<Slot> slots(size_t(opt_.batch_size));
  std::vector<std::vector<Sampled>> local(static_cast<size_t>(M));  // results of a stage that has the head too
  std::vector<TokenEvent> events;
  std::optional<Request> ready;  // taken from the feed, not admitted yet (no free slot)
  const int tokens_from = p.has_head ? -1 : peer("tokens.in", CommStep::Kind::recv_tokens);
  const std::vector<int> tp_peers = opt_.live ? followers() : std::vector<int>{};
  auto report = [&] {
    if (on_events && !events.empty()) on_events(events);
    events.clear();
  };
  double last_sent = now();
  for (;;) {
    for (int c : feed.take_cancelled()) {
      if (ready && ready->index == c) ready.reset();
      for (Slot& sl : slots)
        if (sl.request == c) sl.cancel = true;
    }
    bool worked = false;
    for (int g = 0; g < M; ++g) {
      if (in_flight_[size_t(g)]) {
        std::vector<Sampled> res = p.has_head ? std::move(local[size_t(g)])
                                              : recv_results(g, tokens_from, opt_.live ? &events : nullptr);
        for (const Sampled& s : res) {
          Slot& sl = slots[size_t(s.slot)];
          if (s.finished) sl = Slot{};
          else sl.pending_token = s.token;
        }
        in_flight_[size_t(g)] = 0;
        report();
      }
      Batch b;
      if (!build_batch(g, slots, feed, ready, b)) continue;
      worked = true;
      for (int f : tp_peers) send_batch(b, f, true);
      compute_and_pass(b, local, events, done);
      report();
      last_sent = now();
    }
    if (worked || std::any_of(in_flight_.begin(), in_flight_.end(), [](char c) { return c != 0; })) continue;
    if (!ready && feed.ended()) break;
    if (!ready) ready = feed.next(opt_.live ? opt_.keepalive_s : 0.0);  // idle: wait for a request
    if (!ready && opt_.live && now() - last_sent >= 0.9 * opt_.keepalive_s) {
      for (int f : tp_peers) send_control(Msg::keepalive, f);
      if (next_stage_ >= 0) send_control(Msg::keepalive, next_stage_);
      last_sent = now();
    }
  }
  for (int f : tp_peers) send_control(Msg::shutdown, f);
  if (next_stage_ >= 0) send_control(Msg::shutdown, next_stage_);
}

// Fills group g's batch: cancelled requests leave their slots, free slots admit requests (the whole prompt:
// prefill), the others decode their last sampled token. False when the group has nothing to run.
bool PipelineEngine::build_batch(int g, std::vector<Slot>& slots, RequestFeed& feed, std::optional<Request>& ready,
                                 Batch& b) {
  const int B = opt_.batch_size, M = opt_.micro_batches;
  b.group = g;
  for (int s = g * B / M; s < (g + 1) * B / M; ++s) {
    Slot& sl = slots[size_t(s)];
    if (sl.request >= 0 && sl.cancel) {
      pending_cancel_.push_back(sl.request);
      sl = Slot{};
    }
    if (sl.request < 0) {
      if (!ready) ready = feed.next(0.0);
      if (!ready) continue;
      const Request& r = *ready;
      if (int(r.prompt_ids.size()) >= stage_.max_ctx() || r.prompt_ids.empty())
        throw std::runtime_error("request " + r.id + ": prompt of " + std::to_string(r.prompt_ids.size()) +
                                 " tokens does not fit the context of " + std::to_string(stage_.max_ctx()));
      for (int i = 0; i < int(r.prompt_ids.size()); ++i) {  // prefill: the whole prompt in this batch
        b.tokens.tokens.push_back(r.prompt_ids[size_t(i)]);
        b.tokens.slot.push_back(s);
        b.tokens.pos.push_back(i);
      }
      sl = Slot{r.index, int(r.prompt_ids.size())};
      stats_.prompt_tokens += long(r.prompt_ids.size());
      b.admitted.push_back(std::move(*ready));
      ready.reset();
    } else {  // decode: the token sampled last time
      b.tokens.tokens.push_back(sl.pending_token);
      b.tokens.slot.push_back(s);
      b.tokens.pos.push_back(sl.next_pos++);
    }
    b.sample_rows.push_back(b.tokens.size() - 1);
    b.sample_requests.push_back(sl.request);
  }
  if (b.tokens.size() == 0) return false;
  b.cancelled = std::move(pending_cancel_);
  pending_cancel_.clear();
  return true;
}

// Embedding and layers of a first-stage batch, then the head here or the activations on to the next stage.
void PipelineEngine::compute_and_pass(Batch& b, std::vector<std::vector<Sampled>>& local,
                                      std::vector<TokenEvent>& events, const OnComplete& done) {
  run_layers(b);
  if (stage_.plan().has_head) {
    apply_admitted(b);
    local[size_t(b.group)] = finish_on_last_stage(b, done, events);
  } else {
    send_batch(b, next_stage_, false);
  }
  in_flight_[size_t(b.group)] = 1;
}

// This stage's share of the forward pass (the embedding first on the first stage), timed.
void PipelineEngine::run_layers(Batch& b) {
  const double t = now(), ar = stage_.allreduce_s();
  if (stage_.plan().has_embedding) stage_.embed(b.tokens);
  stage_.forward_layers(b.tokens);
  const double te = now();
  stats_.compute_s += te - t;
  spans_.add("compute", t - t0_, te - t0_, b.group, b.tokens.size(), stage_.allreduce_s() - ar);
  ++stats_.forward_passes;
  maybe_inject_fault();
}

// A first-stage tp rank other than the leader (live feeds): runs the leader's batches as they come. Its tokens.in
// peer sends results in the order the batches went; the leader may take a group's results without sending that
// group again (its requests finished), so before a group's next batch the results are taken oldest first up to
// that group's (never one out of turn).
void PipelineEngine::run_follower(const OnComplete& done) {
  const RankPlan& p = stage_.plan();
  const int leader = p.world.rank_of(0, p.world.pp_rank());
  const int tokens_from = p.has_head ? -1 : peer("tokens.in", CommStep::Kind::recv_tokens);
  std::vector<std::vector<Sampled>> local(static_cast<size_t>(opt_.micro_batches));
  std::vector<TokenEvent> events;  // the leader reports; these are dropped
  std::deque<int> sent;            // groups whose results have not come back, oldest first
  auto drain_through = [&](int g) {
    while (in_flight_[size_t(g)]) {
      const int oldest = sent.front();
      sent.pop_front();
      if (!p.has_head) recv_results(oldest, tokens_from, nullptr);
      in_flight_[size_t(oldest)] = 0;
    }
  };
  for (;;) {
    Batch b;
    const Msg m = recv_batch(b, leader, true);
    if (m == Msg::shutdown) break;
    if (m == Msg::keepalive) {
      if (next_stage_ >= 0) send_control(Msg::keepalive, next_stage_);
      continue;
    }
    drain_through(b.group);
    compute_and_pass(b, local, events, done);
    sent.push_back(b.group);
  }
  while (!sent.empty()) drain_through(sent.front());
  if (next_stage_ >= 0) send_control(Msg::shutdown, next_stage_);
}

void PipelineEngine::run_later_stage(const OnComplete& done) {
  const RankPlan& p = stage_.plan();
  const int prev_stage = peer("stage.input", CommStep::Kind::recv_activations);
  const int tokens_to = p.has_head ? peer("tokens.out", CommStep::Kind::send_tokens) : -1;
  std::vector<TokenEvent> events;
  Batch b;
  for (;;) {
    const Msg m = recv_batch(b, prev_stage, false);
    if (m == Msg::shutdown) break;
    if (m == Msg::keepalive) {
      if (next_stage_ >= 0) send_control(Msg::keepalive, next_stage_);
      continue;
    }
    run_layers(b);
    if (p.has_head) {
      apply_admitted(b);
      events.clear();
      const std::vector<Sampled> res = finish_on_last_stage(b, done, events);
      send_results(res, events, b.group, tokens_to);
    } else {
      send_batch(b, next_stage_, false);
    }
  }
  if (next_stage_ >= 0) send_control(Msg::shutdown, next_stage_);
}

void PipelineEngine::write_logits(int request, const float* rows, size_t count) {
  FILE*& f = logit_files_[request];
  const std::string path = opt_.logits_dir + "/" + std::to_string(request) + ".f32";
  if (!f) {
    std::filesystem::create_directories(opt_.logits_dir);
    f = std::fopen(path.c_str(), "wb");
    if (!f) throw std::runtime_error(path + ": cannot write logits: " + std::strerror(errno));
  }
  if (std::fwrite(rows, sizeof(float), count, f) != count || std::fflush(f) != 0)
    throw std::runtime_error(path + ": writing logits failed: " + std::strerror(errno));
}

}  // namespace hpcinfer
