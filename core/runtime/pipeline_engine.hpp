// The per-rank generation loop: continuous batching over `batch_size` KV-cache slots, split into `micro_batches`
// groups that flow through the pipeline stages concurrently.
//
// First stage: admits requests into free slots, builds each group's batch (a new request's whole prompt = prefill,
// else one token per sequence = decode), embeds, runs its layers, sends activations on. Middle stages: receive, run,
// send. Last stage: runs its layers and the head, samples, decides when a request is finished, reports it, and
// sends (slot, token, finished) back to the first stage. With micro_batches >= pp every stage has work: stage k runs
// group i while stage k+1 runs group i-1. World 1 is the same loop with the sends replaced by local calls.
// Messages between neighbours keep FIFO order, so no tags beyond the direction are needed. The peers are the plan's
// point-to-point steps (stage.input, stage.output, tokens.out, tokens.in); hidden states travel from and into the
// stage's backend memory.
#pragma once

#include <cstdio>
#include <functional>
#include <map>
#include <vector>

#include "core/runtime/model_stage.hpp"
#include "core/runtime/logprobs.hpp"
#include "core/runtime/requests.hpp"
#include "core/runtime/sampler.hpp"
#include "core/runtime/span_log.hpp"
#include "core/tokenizer/tokenizer.hpp"
#include "hpcinfer/communicator.hpp"

namespace hpcinfer {

struct EngineOptions {
  int batch_size = 1;
  int micro_batches = 1;
  int max_new_tokens = 64;
  SamplingParams sampling;
  uint64_t seed = 0;
  std::vector<std::string> stop_strings;
  std::vector<int> stop_ids;  // EOS / end-of-turn
  int logprobs = 0;           // > 0: each completion carries the top-k logprobs of every generated token
  // Non-empty: the last stage's tp rank 0 writes <logits_dir>/<request index>.f32, float32 [positions, vocab]: row t
  // is the distribution after token t of prompt + completion (every prompt position, then each generated token but
  // the last), appended as computed and closed when the request ends (outputs.keep_logits).
  std::string logits_dir;
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
  // comm may be null when the world has one rank. The tokenizer is used by the last stage for stop strings/text;
  // null when the prompts are ids and the model has none (completions then carry ids and no text).
  PipelineEngine(ModelStage& stage, Communicator* comm, const Tokenizer* tok, EngineOptions opt);
  ~PipelineEngine();
  // Runs every request to completion. on_complete runs on the last stage's tp rank 0, as each one finishes.
  void run(const std::vector<Request>& requests, const std::function<void(const Completion&)>& on_complete);
  const EngineStats& stats() const { return stats_; }
  // This rank's timeline of the last run(): compute / head / send / recv_wait spans, seconds since run() began.
  const SpanLog& spans() const { return spans_; }
  // The steady-clock time (seconds) at which the last run() began: the epoch of spans() and of the timings.
  double epoch() const { return t0_; }

 private:
  struct Slot {
    int request = -1;  // index into requests, -1 = free
    int next_pos = 0;
    int pending_token = -1;
    bool fresh = false;
  };
  struct Sampled {
    int slot, token, finished;
  };
  struct Batch {  // what travels between stages besides the activations
    int group = 0;
    TokenBatch tokens;
    std::vector<int> sample_rows;      // rows of the batch whose logits are sampled
    std::vector<int> sample_requests;  // request index of each sampled row
  };
  struct Live {  // last-stage state of one request
    Sampler sampler;
    Completion c;
    int prev_token = -1;
    double first_token_at = -1;
  };

  void run_first_stage(const std::vector<Request>& reqs, const std::function<void(const Completion&)>& done);
  void run_later_stage(const std::vector<Request>& reqs, const std::function<void(const Completion&)>& done);
  std::vector<Sampled> finish_on_last_stage(const Batch& b, const std::function<void(const Completion&)>& done);
  void send_batch(const Batch& b, int dst);
  bool recv_batch(Batch& b, int src);  // false on shutdown
  int peer(const char* anchor, CommStep::Kind kind) const;  // the plan's step there: its peer rank
  void send_shutdown(int dst);
  void send_results(const std::vector<Sampled>& r, int group, int dst);
  std::vector<Sampled> recv_results(int group, int src);
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
  std::vector<Live> live_;  // [requests], last stage only
  double t0_ = 0;
};

}  // namespace hpcinfer
