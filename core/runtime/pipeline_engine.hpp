// The per-rank generation loop: continuous batching over `batch_size` KV-cache slots, split into `micro_batches`
// groups that flow through the pipeline stages concurrently.
//
// First stage: admits requests into free slots, builds each group's batch (a new request's whole prompt = prefill,
// else one token per sequence = decode; requests arriving while others run join at their group's next batch),
// embeds, runs its layers, sends activations on, with each new request's parameters riding along once. Middle
// stages: receive, run, send. Last stage: runs its layers and the head, samples, decides when a request is
// finished, reports it, and sends (slot, token, finished) back to the first stage (with the token events, live). With micro_batches >= pp every stage has work: stage k runs
// group i while stage k+1 runs group i-1. World 1 is the same loop with the sends replaced by local calls.
// Messages between neighbours keep FIFO order, so no tags beyond the direction are needed. The peers are the plan's
// point-to-point steps (stage.input, stage.output, tokens.out, tokens.in); hidden states travel from and into the
// stage's backend memory.
#pragma once

#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "core/runtime/model_stage.hpp"
#include "core/runtime/logprobs.hpp"
#include "core/runtime/request_feed.hpp"
#include "core/runtime/requests.hpp"
#include "core/runtime/sampler.hpp"
#include "core/runtime/span_log.hpp"
#include "core/tokenizer/tokenizer.hpp"
#include "hpcinfer/communicator.hpp"

namespace hpcinfer {

struct EngineOptions {
  int batch_size = 1;
  int micro_batches = 1;
  std::vector<int> stop_ids;  // EOS / end-of-turn
  // Non-empty: the last stage's tp rank 0 writes <logits_dir>/<request index>.f32, float32 [positions, vocab]: row t
  // is the distribution after token t of prompt + completion (every prompt position, then each generated token but
  // the last), appended as computed and closed when the request ends (outputs.keep_logits).
  std::string logits_dir;
  // A live feed (serve): only the first stage's tp rank 0 (the leader) sees it; it schedules and sends each batch to
  // the stage's other tp ranks, the last stage sends TokenEvents back to it, and while idle it sends a keepalive
  // down the pipeline every keepalive_s seconds (the peers' receive timeouts). false: every first-stage rank
  // schedules the same fixed feed alike.
  bool live = false;
  double keepalive_s = 10;
};

struct EngineStats {
  double wall_s = 0;
  double compute_s = 0;    // embedding, layers, head, sampling
  double send_s = 0;       // inside send calls
  double recv_wait_s = 0;  // blocked in recv: the pipeline bubble plus transfer time
  double allreduce_s = 0;  // tp all-reduces inside compute_s (0 without tensor parallelism)
  long prompt_tokens = 0;
  long generated_tokens = 0;
  int forward_passes = 0;
};

class PipelineEngine {
 public:
  using OnComplete = std::function<void(const Completion&)>;
  using OnEvents = std::function<void(const std::vector<TokenEvent>&)>;
  // comm may be null when the world has one rank. The tokenizer is used by the last stage for stop strings/text;
  // null when the prompts are ids and the model has none (completions then carry ids and no text).
  PipelineEngine(ModelStage& stage, Communicator* comm, const Tokenizer* tok, EngineOptions opt);
  ~PipelineEngine();
  // Runs every request of the feed to completion. on_complete runs on the last stage's tp rank 0 as each request
  // finishes; on_events (live feeds) on the leader, with each step's events, in order.
  void run(RequestFeed& feed, const OnComplete& on_complete, const OnEvents& on_events = nullptr);
  void run(const std::vector<Request>& requests, const OnComplete& on_complete);
  const EngineStats& stats() const { return stats_; }
  // This rank's timeline of the last run(): compute / head / send / recv_wait spans, seconds since run() began.
  const SpanLog& spans() const { return spans_; }
  // The steady-clock time (seconds) at which the last run() began: the epoch of spans() and of the timings.
  double epoch() const { return t0_; }

 private:
  struct Slot {
    int request = -1;  // Request::index, -1 = free
    int next_pos = 0;
    int pending_token = -1;
    bool cancel = false;  // dropped at the group's next batch
  };
  struct Sampled {
    int slot, token, finished;
  };
  struct Batch {  // what travels between stages besides the activations
    int group = 0;
    TokenBatch tokens;
    std::vector<int> sample_rows;      // rows of the batch whose logits are sampled
    std::vector<int> sample_requests;  // request index of each sampled row
    std::vector<Request> admitted;     // requests whose prefill this batch starts
    std::vector<int> cancelled;        // requests the last stage forgets
  };
  struct Live {  // last-stage state of one request
    Sampler sampler;
    Completion c;
    GenerationParams params;
    std::vector<int> prompt_ids;  // kept for echo's prompt logprobs until the prefill
    int prev_token = -1;
    double first_token_at = -1;
    bool prefilled = false;
    size_t released = 0;  // bytes of c.text reported in events
  };
  enum class Msg { data, shutdown, keepalive };

  void run_first_stage(RequestFeed& feed, const OnComplete& done, const OnEvents& events);
  void run_follower(const OnComplete& done);
  void run_later_stage(const OnComplete& done);
  bool build_batch(int group, std::vector<Slot>& slots, RequestFeed& feed, std::optional<Request>& ready, Batch& b);
  void run_layers(Batch& b);  // this stage's layers (and embedding), timed
  void compute_and_pass(Batch& b, std::vector<std::vector<Sampled>>& local, std::vector<TokenEvent>& events,
                        const OnComplete& done);
  void apply_admitted(const Batch& b);  // last stage: Live of each admitted request; cancelled ones dropped
  std::vector<Sampled> finish_on_last_stage(const Batch& b, const OnComplete& done, std::vector<TokenEvent>& events);
  // Last stage: the next token (and logprobs) of each sampled row; -1 for requests that generate nothing.
  void choose_tokens(const Batch& b, std::vector<int>& tokens, std::vector<std::optional<TokenLogprobs>>& lps);
  std::vector<std::optional<TokenLogprobs>> prompt_logprobs(const Batch& b, size_t i, const Live& l);
  std::string release_text(Live& l, bool finished) const;  // the text an event may carry now
  void send_batch(const Batch& b, int dst, bool with_tokens);
  Msg recv_batch(Batch& b, int src, bool with_tokens);
  int peer(const char* anchor, CommStep::Kind kind) const;  // the plan's step there: its peer rank
  std::vector<int> followers() const;                       // the first stage's other tp ranks (world ranks)
  void send_control(Msg kind, int dst);
  void send_results(const std::vector<Sampled>& r, const std::vector<TokenEvent>& events, int group, int dst);
  std::vector<Sampled> recv_results(int group, int src, std::vector<TokenEvent>* events);
  void write_logits(int request, const float* rows, size_t count);  // appends to the request's logits file
  double now() const;
  void maybe_inject_fault() const;

  ModelStage& stage_;
  Communicator* comm_;
  const Tokenizer* tok_;
  std::map<int, FILE*> logit_files_;  // request index -> its open logits file (keep_logits)
  EngineOptions opt_;
  EngineStats stats_;
  SpanLog spans_;
  std::map<int, Live> live_;  // request index -> state, last stage only
  std::vector<char> in_flight_;  // [micro_batches]: a batch of the group awaits its results
  std::vector<int> pending_cancel_;  // first stage: cancelled requests not yet told down the pipeline
  int next_stage_ = -1;              // the rank the activations go to, -1 on the last stage
  double t0_ = 0;
};

}  // namespace hpcinfer
