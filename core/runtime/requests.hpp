// Requests in (prompts JSONL) and completions out (JSONL, one line written and flushed as each request finishes,
// so a crash loses no finished completion).
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include <optional>

#include "core/runtime/logprobs.hpp"
#include "core/runtime/sampler.hpp"

namespace hpcinfer {

// What one request asks of the generation: `run` gives every request the configuration's generation settings,
// `serve` each its own from the API request.
struct GenerationParams {
  int max_new_tokens = 64;      // 0: no generated token (echo of the prompt's logprobs only)
  SamplingParams sampling;
  uint64_t seed = 0;            // the request's random stream
  std::vector<std::string> stop_strings;
  bool logprobs = false;        // each generated token carries its logprob ...
  int top_logprobs = 0;         // ... and the top-k of its distribution
  bool prompt_logprobs = false; // echo: every prompt token after the first carries its logprob (and top-k)
};

struct Request {
  int index = 0;                // unique in the run: position in the input (run), arrival number (serve)
  std::string id;               // "id" from the file, or the line number
  std::string prompt;
  std::vector<int> prompt_ids;  // from the file ("prompt_ids"), else filled by the caller (core/tokenizer/prompt_ids)
  bool ids_given = false;       // prompt_ids came from the file: replayed exactly, no tokenizer involved
  GenerationParams params;
};

// Requests as they travel from the first stage to the last with the batch that first holds them (JSON).
std::string requests_to_wire(const std::vector<Request>& r);
std::vector<Request> requests_from_wire(const std::string& s);  // throws std::runtime_error when malformed

// What the last stage reports of a request at each step it samples for it (serve: streamed to the client).
struct TokenEvent {
  int request = 0;                             // Request::index
  int token = -1;                              // the generated token; -1: none (a stop token, or max_new_tokens 0)
  std::string text;                            // text released now: whole UTF-8 characters, never a stop string
  std::optional<TokenLogprobs> logprobs;       // of `token`, when asked
  std::vector<std::optional<TokenLogprobs>> prompt_logprobs;  // echo, first event only: [prompt tokens], [0] empty
  bool finished = false;
  std::string finish_reason;                   // "stop" | "length" when finished
};
std::string events_to_wire(const std::vector<TokenEvent>& events);
std::vector<TokenEvent> events_from_wire(const std::string& s);

// One {"prompt": ..., "id": ...} object per line, or {"prompt_ids": [ids], ...} for models without a tokenizer and
// exact replays (both: the ids are used, the prompt is kept as the label); blank lines skipped. A broken line: with
// on_bad_line "stop", throws std::runtime_error "FILE:LINE: ..."; with "skip", appends that text to *warnings and
// goes on.
std::vector<Request> read_prompts_jsonl(const std::string& path, const std::string& on_bad_line,
                                        std::vector<std::string>* warnings);

struct Completion {
  std::string id;
  int index = 0;
  std::string prompt;
  std::string text;
  std::vector<int> token_ids;   // generated ids (stop tokens excluded)
  int prompt_tokens = 0;
  std::string finish_reason;    // "stop" (EOS/stop string), "length" (max_new_tokens or context)
  double ttft_s = 0;            // engine start -> first generated token (includes waiting for a batch slot)
  double latency_s = 0;         // engine start -> last token
  double tpot_s = 0;            // mean time per output token after the first
  bool with_logprobs = false;   // outputs.logprobs > 0: write "logprobs", one entry per token_ids entry
  std::vector<TokenLogprobs> logprobs;
  std::string error;            // non-empty: the request failed alone (finish_reason "error"), e.g. a prompt too long
};

class CompletionWriter {
 public:
  // append: after the lines already there (resume), else the file starts empty. Throws naming the path.
  explicit CompletionWriter(const std::string& path, bool append = false);
  ~CompletionWriter();
  void write(const Completion& c);                     // one JSON line, flushed
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  FILE* f_ = nullptr;
};

std::string completion_json(const Completion& c);

}  // namespace hpcinfer
