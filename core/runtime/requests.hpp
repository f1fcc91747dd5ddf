// Requests in (prompts JSONL) and completions out (JSONL, one line written and flushed as each request finishes,
// so a crash loses no finished completion).
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "core/runtime/logprobs.hpp"

namespace hpcinfer {

struct Request {
  int index = 0;                // position in the input, the scheduling order
  std::string id;               // "id" from the file, or the line number
  std::string prompt;
  std::vector<int> prompt_ids;  // from the file ("prompt_ids"), else filled by the caller (core/tokenizer/prompt_ids)
  bool ids_given = false;       // prompt_ids came from the file: replayed exactly, no tokenizer involved
};

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
};

class CompletionWriter {
 public:
  explicit CompletionWriter(const std::string& path);  // truncates; throws naming the path
  ~CompletionWriter();
  void write(const Completion& c);                     // one JSON line, flushed
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  FILE* f_ = nullptr;
};

std::string completion_json(const Completion& c);

}  // namespace hpcinfer
