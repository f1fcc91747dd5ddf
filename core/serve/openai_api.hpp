// OpenAI's completions and chat completions as hpcinfer serves them: a request body read and checked (every error
// names its field, in OpenAI's error shape), and the response written from the engine's token events, whole or as
// server-sent-event chunks. Pure functions of their inputs: no sockets, no engine (tests drive them directly).
//
// Fields a request leaves out take the configuration's generation settings (generation.*), so an operator sets the
// defaults; `max_tokens` defaults to generation.max_new_tokens. Supported: prompt (text, token ids, or a list of
// either), messages, max_tokens / max_completion_tokens, temperature, top_p, top_k, min_p, seed, stop, n,
// logprobs / top_logprobs, echo (completions), stream, stream_options.include_usage; model must be the served one.
// Penalties, logit_bias, best_of other than n, suffix, tools and other response formats are refused with 400;
// unknown fields too (OpenAI's "Unrecognized request argument").
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/runtime/requests.hpp"
#include "core/tokenizer/tokenizer.hpp"

namespace hpcinfer::serve {

struct ApiError : std::runtime_error {
  int status;         // HTTP status
  std::string type;   // invalid_request_error | not_found_error | rate_limit_error | server_error | timeout_error
  std::string param;  // the offending field, "" when none
  std::string code;   // e.g. context_length_exceeded, model_not_found; "" when none
  ApiError(int status, const std::string& message, std::string param = "", std::string type = "invalid_request_error",
           std::string code = "");
};
// {"error": {"message", "type", "param", "code"}}
std::string error_json(const ApiError& e);

struct ApiContext {
  const Tokenizer* tok = nullptr;  // required
  std::string model_name;
  int max_ctx = 0;                 // tokens per sequence
  int64_t vocab = 0;
  std::string add_bos = "auto";    // generation.add_bos
  GenerationParams defaults;       // generation.*: what a request leaves out
};

struct ApiRequest {
  bool chat = false;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool echo = false;
  int n = 1;                   // choices per prompt
  std::vector<std::vector<int>> prompts;  // token ids of each prompt
  std::vector<std::string> prompt_texts;  // the text of each prompt (decoded when it came as ids)
  GenerationParams params;     // every choice's; choice c draws from seed + c when the seed is given
  bool seed_given = false;
  int choices() const { return int(prompts.size()) * n; }
};

// Throws ApiError: 400 naming the field, 404 for another model, 413 for a prompt the context cannot hold.
ApiRequest parse_request(const std::string& body, bool chat, const ApiContext& ctx);

// One response from the events of its choices (choice c = prompt c / n, its (c % n)-th sample).
class ResponseBuilder {
 public:
  ResponseBuilder(const ApiRequest& req, const ApiContext& ctx, std::string id, long created);
  // Stream: the "data: {...}\n\n" chunks this event adds (possibly none). Non-stream: collects, returns "".
  std::string on_event(int choice, const TokenEvent& e);
  // Stream: the chunk that ends it (usage when asked) and "data: [DONE]\n\n".
  std::string stream_end() const;
  std::string response_json() const;  // non-stream: the whole response
  int completion_tokens() const;
  int prompt_tokens() const;

 private:
  struct Choice {
    std::string text;
    int tokens = 0;
    int prev = -1;            // the token before the next one (for its text)
    size_t offset = 0;        // text_offset of the next token
    std::string finish_reason;
    nlohmann::json logprobs;  // completions: {tokens, token_logprobs, top_logprobs, text_offset}; chat: [entries]
    bool started = false;     // stream: the first chunk sent
  };
  nlohmann::json logprob_entries(Choice& ch, const std::vector<int>& ids,
                                 const std::vector<std::optional<TokenLogprobs>>& lps);
  nlohmann::json chunk(int choice, nlohmann::json body) const;
  const ApiRequest& req_;
  const ApiContext& ctx_;
  std::string id_;
  long created_;
  std::vector<Choice> choices_;
};

}  // namespace hpcinfer::serve
