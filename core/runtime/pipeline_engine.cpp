#include "core/runtime/pipeline_engine.hpp"

#include "core/runtime/next_tokens.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <chrono>
#include <cstdlib>
#include <stdexcept>

namespace hpcinfer {
namespace {
constexpr uint32_t kTagForward = 1;   // first -> last: batches and activations
constexpr uint32_t kTagBackward = 2;  // last -> first: sampled tokens
constexpr int kData = 0, kShutdown = 1;
}  // namespace

PipelineEngine::PipelineEngine(ModelStage& stage, Communicator* comm, const Tokenizer* tok, EngineOptions opt)
    : stage_(stage), comm_(comm), tok_(tok), opt_(std::move(opt)) {
  if (opt_.batch_size < 1 || opt_.micro_batches < 1 || opt_.micro_batches > opt_.batch_size)
    throw std::invalid_argument("batching: need 1 <= micro_batches <= batch_size");
  if (!tok_ && !opt_.stop_strings.empty()) throw std::invalid_argument("stop strings need a tokenizer");
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

void PipelineEngine::run(const std::vector<Request>& requests,
                         const std::function<void(const Completion&)>& on_complete) {
  t0_ = now();
  spans_.clear();
  const double allreduce0 = stage_.allreduce_s();
  const RankPlan& p = stage_.plan();
  if (p.has_head) {
    live_.clear();
    live_.reserve(requests.size());
    for (const Request& r : requests) {
      Live l{Sampler(opt_.sampling, opt_.seed + uint64_t(r.index) * 0x9E3779B97F4A7C15ull), {}, -1, -1};
      l.c.id = r.id;
      l.c.index = r.index;
      l.c.prompt = r.prompt;
      l.c.prompt_tokens = int(r.prompt_ids.size());
      l.c.with_logprobs = opt_.logprobs > 0;
      l.prev_token = r.prompt_ids.empty() ? -1 : r.prompt_ids.back();
      live_.push_back(std::move(l));
    }
  }
  if (p.has_embedding) run_first_stage(requests, on_complete);
  else run_later_stage(requests, on_complete);
  stats_.wall_s = now() - t0_;
  stats_.allreduce_s = stage_.allreduce_s() - allreduce0;
}

// First stage: the scheduler. Visits the groups round-robin; a group's next batch waits for its sampled tokens.
void PipelineEngine::run_first_stage(const std::vector<Request>& reqs,
                                     const std::function<void(const Completion&)>& done) {
  const RankPlan& p = stage_.plan();
  const int B = opt_.batch_size, M = opt_.micro_batches;
  std::vector<Slot> slots(static_cast<size_t>(B));
  std::vector<char> in_flight(size_t(M), 0);
  std::vector<std::vector<Sampled>> local(static_cast<size_t>(M));  // world-size-1 pipelines: results kept here
  size_t next_request = 0;
  const int tokens_from = p.has_head ? -1 : peer("tokens.in", CommStep::Kind::recv_tokens);
  const int next_stage = p.has_head ? -1 : peer("stage.output", CommStep::Kind::send_activations);
  for (const Request& r : reqs)
    if (int(r.prompt_ids.size()) >= stage_.max_ctx() || r.prompt_ids.empty())
      throw std::runtime_error("request " + r.id + ": prompt of " + std::to_string(r.prompt_ids.size()) +
                               " tokens does not fit the context of " + std::to_string(stage_.max_ctx()));
  for (;;) {
    bool worked = false;
    for (int g = 0; g < M; ++g) {
      const int s0 = g * B / M, s1 = (g + 1) * B / M;
      if (in_flight[size_t(g)]) {
        std::vector<Sampled> res = p.has_head ? std::move(local[size_t(g)]) : recv_results(g, tokens_from);
        for (const Sampled& s : res) {
          Slot& sl = slots[size_t(s.slot)];
          if (s.finished) sl.request = -1;
          else sl.pending_token = s.token;
        }
        in_flight[size_t(g)] = 0;
      }
      Batch b;
      b.group = g;
      for (int s = s0; s < s1; ++s) {
        Slot& sl = slots[size_t(s)];
        if (sl.request < 0 && next_request < reqs.size()) sl = Slot{int(next_request++), 0, -1, true};
        if (sl.request < 0) continue;
        const Request& r = reqs[size_t(sl.request)];
        if (sl.fresh) {  // prefill: the whole prompt in this batch
          for (int i = 0; i < int(r.prompt_ids.size()); ++i) {
            b.tokens.tokens.push_back(r.prompt_ids[size_t(i)]);
            b.tokens.slot.push_back(s);
            b.tokens.pos.push_back(i);
          }
          sl.next_pos = int(r.prompt_ids.size());
          sl.fresh = false;
          stats_.prompt_tokens += long(r.prompt_ids.size());
        } else {  // decode: the token sampled last time
          b.tokens.tokens.push_back(sl.pending_token);
          b.tokens.slot.push_back(s);
          b.tokens.pos.push_back(sl.next_pos++);
        }
        b.sample_rows.push_back(b.tokens.size() - 1);
        b.sample_requests.push_back(sl.request);
      }
      if (b.tokens.size() == 0) continue;
      worked = true;
      const double t = now(), ar = stage_.allreduce_s();
      stage_.embed(b.tokens);
      stage_.forward_layers(b.tokens);
      const double te = now();
      stats_.compute_s += te - t;
      spans_.add("compute", t - t0_, te - t0_, g, b.tokens.size(), stage_.allreduce_s() - ar);
      ++stats_.forward_passes;
      maybe_inject_fault();
      if (p.has_head) local[size_t(g)] = finish_on_last_stage(b, done);
      else send_batch(b, next_stage);
      in_flight[size_t(g)] = 1;
    }
    if (!worked && next_request >= reqs.size() &&
        std::none_of(in_flight.begin(), in_flight.end(), [](char c) { return c != 0; }))
      break;
  }
  if (!p.has_head) send_shutdown(next_stage);
}

void PipelineEngine::run_later_stage(const std::vector<Request>&, const std::function<void(const Completion&)>& done) {
  const RankPlan& p = stage_.plan();
  const int prev_stage = peer("stage.input", CommStep::Kind::recv_activations);
  const int next_stage = p.has_head ? -1 : peer("stage.output", CommStep::Kind::send_activations);
  const int tokens_to = p.has_head ? peer("tokens.out", CommStep::Kind::send_tokens) : -1;
  Batch b;
  while (recv_batch(b, prev_stage)) {
    const double t = now(), ar = stage_.allreduce_s();
    stage_.forward_layers(b.tokens);
    const double te = now();
    stats_.compute_s += te - t;
    spans_.add("compute", t - t0_, te - t0_, b.group, b.tokens.size(), stage_.allreduce_s() - ar);
    ++stats_.forward_passes;
    maybe_inject_fault();
    if (p.has_head) send_results(finish_on_last_stage(b, done), b.group, tokens_to);
    else send_batch(b, next_stage);
  }
  if (!p.has_head) send_shutdown(next_stage);
}

// Last stage: logits of the sampled rows, next tokens, stop rules; reports finished requests.
std::vector<PipelineEngine::Sampled> PipelineEngine::finish_on_last_stage(
    const Batch& b, const std::function<void(const Completion&)>& done) {
  const double t = now(), ar = stage_.allreduce_s();
  const int64_t V = stage_.desc().vocab;
  // keep_logits: every row of the batch through the head (every tp rank alike: the head may gather), else the
  // sampled rows only.
  const bool keep = !opt_.logits_dir.empty();
  std::vector<int> rows = b.sample_rows;
  if (keep) {
    rows.resize(size_t(b.tokens.size()));
    for (int r = 0; r < b.tokens.size(); ++r) rows[size_t(r)] = r;
  }
  // The next tokens where the logits are (next_tokens.hpp: ids or candidates cross to the host), unless every row is
  // wanted on the host: keep_logits, and logprobs on the host backend (whose numbers stay those of the whole row).
  const bool device = stage_.backend().memory_space() != MemorySpace::host;
  const bool on_backend = !keep && (opt_.logprobs == 0 || device);
  std::vector<float> logits;
  NextTokens next;
  if (on_backend) {
    std::vector<Sampler*> samplers;
    for (size_t i = 0; i < b.sample_rows.size(); ++i) samplers.push_back(&live_[size_t(b.sample_requests[i])].sampler);
    next = next_tokens_on_backend(stage_, rows, samplers, opt_.logprobs);
  } else {
    logits.resize(rows.size() * size_t(V));
    stage_.head(rows, logits.data());
  }
  std::vector<Sampled> out;
  const bool reporter = stage_.plan().world.tp_rank() == 0;
  for (size_t i = 0; i < b.sample_rows.size(); ++i) {
    Live& l = live_[size_t(b.sample_requests[i])];
    const int row = b.sample_rows[i];
    const float* row_logits = on_backend ? nullptr : logits.data() + (keep ? size_t(row) : i) * size_t(V);
    if (keep && reporter) {  // this request's rows of the batch: after the previous sampled row, up to this one
      const int first = i == 0 ? 0 : b.sample_rows[i - 1] + 1;
      write_logits(b.sample_requests[i], logits.data() + size_t(first) * size_t(V), size_t(row - first + 1) * size_t(V));
    }
    const int token = on_backend ? next.tokens[i] : l.sampler.sample(row_logits, V);
    const double tn = now();
    if (l.first_token_at < 0) l.first_token_at = tn;
    bool finished = false;
    if (std::find(opt_.stop_ids.begin(), opt_.stop_ids.end(), token) != opt_.stop_ids.end()) {
      l.c.finish_reason = "stop";
      finished = true;
    } else {
      if (opt_.logprobs > 0 && reporter)  // the distribution `token` was drawn from, before it is overwritten
        l.c.logprobs.push_back(on_backend ? *next.logprobs[i] : token_logprobs(row_logits, V, token, opt_.logprobs));
      l.c.token_ids.push_back(token);
      if (tok_) l.c.text += tok_->decode_token(l.prev_token, token);
      l.prev_token = token;
      ++stats_.generated_tokens;
      for (const std::string& s : opt_.stop_strings) {
        const size_t at = l.c.text.find(s, l.c.text.size() > s.size() + 64 ? l.c.text.size() - s.size() - 64 : 0);
        if (!s.empty() && at != std::string::npos) {
          l.c.text.resize(at);
          l.c.finish_reason = "stop";
          finished = true;
          break;
        }
      }
      if (!finished && (int(l.c.token_ids.size()) >= opt_.max_new_tokens || b.tokens.pos[size_t(row)] + 2 >= stage_.max_ctx())) {
        l.c.finish_reason = "length";
        finished = true;
      }
    }
    if (finished) {
      l.c.ttft_s = l.first_token_at - t0_;
      l.c.latency_s = tn - t0_;
      l.c.tpot_s = l.c.token_ids.size() > 1 ? (tn - l.first_token_at) / double(l.c.token_ids.size() - 1) : 0.0;
      if (reporter) done(l.c);
      if (auto f = logit_files_.find(l.c.index); f != logit_files_.end()) {
        std::fclose(f->second);
        logit_files_.erase(f);
      }
    }
    out.push_back({b.tokens.slot[size_t(row)], token, finished ? 1 : 0});
  }
  const double te = now();
  stats_.compute_s += te - t;
  spans_.add("head", t - t0_, te - t0_, b.group, int(b.sample_rows.size()), stage_.allreduce_s() - ar);
  return out;
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

// ---- messages between neighbouring stages ----

void PipelineEngine::send_batch(const Batch& b, int dst) {
  const double t = now();
  const int n = b.tokens.size(), m = int(b.sample_rows.size());
  int header[4] = {kData, b.group, n, m};
  std::vector<int> meta;  // slot[n], pos[n], sample_rows[m], sample_requests[m]
  meta.reserve(size_t(2 * n + 2 * m));
  meta.insert(meta.end(), b.tokens.slot.begin(), b.tokens.slot.end());
  meta.insert(meta.end(), b.tokens.pos.begin(), b.tokens.pos.end());
  meta.insert(meta.end(), b.sample_rows.begin(), b.sample_rows.end());
  meta.insert(meta.end(), b.sample_requests.begin(), b.sample_requests.end());
  comm_->send(header, sizeof header, dst, kTagForward);
  comm_->send(meta.data(), meta.size() * sizeof(int), dst, kTagForward);
  comm_->send(stage_.hidden(n), size_t(n) * size_t(stage_.desc().dim) * sizeof(float), dst, kTagForward);
  const double te = now();
  stats_.send_s += te - t;
  spans_.add("send", t - t0_, te - t0_, b.group, n);
}

bool PipelineEngine::recv_batch(Batch& b, int src) {
  const double t = now();
  int header[4];
  comm_->recv(header, sizeof header, src, kTagForward);
  if (header[0] == kShutdown) {
    const double te = now();
    stats_.recv_wait_s += te - t;
    spans_.add("recv_wait", t - t0_, te - t0_);
    return false;
  }
  const int n = header[2], m = header[3];
  std::vector<int> meta(static_cast<size_t>(2 * n + 2 * m));
  comm_->recv(meta.data(), meta.size() * sizeof(int), src, kTagForward);
  comm_->recv(stage_.hidden(n), size_t(n) * size_t(stage_.desc().dim) * sizeof(float), src, kTagForward);
  b.group = header[1];
  b.tokens.tokens.clear();
  b.tokens.slot.assign(meta.begin(), meta.begin() + n);
  b.tokens.pos.assign(meta.begin() + n, meta.begin() + 2 * n);
  b.sample_rows.assign(meta.begin() + 2 * n, meta.begin() + 2 * n + m);
  b.sample_requests.assign(meta.begin() + 2 * n + m, meta.end());
  const double te = now();
  stats_.recv_wait_s += te - t;
  spans_.add("recv_wait", t - t0_, te - t0_, b.group, n);
  return true;
}

void PipelineEngine::send_shutdown(int dst) {
  int header[4] = {kShutdown, 0, 0, 0};
  comm_->send(header, sizeof header, dst, kTagForward);
}

void PipelineEngine::send_results(const std::vector<Sampled>& r, int group, int dst) {
  const double t = now();
  std::vector<int> msg{group, int(r.size())};
  for (const Sampled& s : r) msg.insert(msg.end(), {s.slot, s.token, s.finished});
  int count = int(msg.size());
  comm_->send(&count, sizeof count, dst, kTagBackward);
  comm_->send(msg.data(), msg.size() * sizeof(int), dst, kTagBackward);
  const double te = now();
  stats_.send_s += te - t;
  spans_.add("send", t - t0_, te - t0_, group, int(r.size()));
}

std::vector<PipelineEngine::Sampled> PipelineEngine::recv_results(int group, int src) {
  const double t = now();
  int count = 0;
  comm_->recv(&count, sizeof count, src, kTagBackward);
  std::vector<int> msg(static_cast<size_t>(count));
  comm_->recv(msg.data(), msg.size() * sizeof(int), src, kTagBackward);
  if (count < 2 || msg[0] != group || count != 2 + 3 * msg[1])
    throw std::runtime_error("pipeline: malformed token message from rank " + std::to_string(src));
  std::vector<Sampled> out;
  for (int i = 0; i < msg[1]; ++i) out.push_back({msg[size_t(2 + 3 * i)], msg[size_t(3 + 3 * i)], msg[size_t(4 + 3 * i)]});
  const double te = now();
  stats_.recv_wait_s += te - t;
  spans_.add("recv_wait", t - t0_, te - t0_, group, msg[1]);
  return out;
}

}  // namespace hpcinfer
