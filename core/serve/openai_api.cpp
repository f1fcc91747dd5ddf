#include "core/serve/openai_api.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/runtime/json_text.hpp"
#include "core/tokenizer/prompt_ids.hpp"

namespace hpcinfer::serve {
namespace {
using nlohmann::json;

constexpr int kMaxTopLogprobs = 20;  // OpenAI's bound
constexpr int kMaxChoices = 64;      // prompts x n in one request
constexpr int kMaxStops = 16;

ApiError bad(const std::string& param, const std::string& message) { return ApiError(400, message, param); }

// Readers of one optional field: absent or null leaves `out` as it is.
bool present(const json& body, const char* key) { return body.contains(key) && !body[key].is_null(); }

void read_int(const json& body, const char* key, long min, long max, int& out) {
  if (!present(body, key)) return;
  const json& v = body[key];
  if (!v.is_number_integer())
    throw bad(key, std::string("'") + key + "' must be an integer, got " + std::string(v.type_name()));
  const long x = v.get<long>();
  if (x < min || x > max)
    throw bad(key, std::string("'") + key + "' must be in [" + std::to_string(min) + ", " + std::to_string(max) +
                       "], got " + std::to_string(x));
  out = int(x);
}

void read_number(const json& body, const char* key, double min, double max, bool min_open, float& out) {
  if (!present(body, key)) return;
  const json& v = body[key];
  if (!v.is_number()) throw bad(key, std::string("'") + key + "' must be a number, got " + std::string(v.type_name()));
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < min || x > max || (min_open && x == min))
    throw bad(key, std::string("'") + key + "' must be in " + (min_open ? "(" : "[") + json_text(min) + ", " + json_text(max) +
                       "], got " + json_text(x));
  out = float(x);
}

void read_bool(const json& body, const char* key, bool& out) {
  if (!present(body, key)) return;
  if (!body[key].is_boolean())
    throw bad(key, std::string("'") + key + "' must be a boolean, got " + std::string(body[key].type_name()));
  out = body[key].get<bool>();
}

std::vector<int> checked_ids(const json& a, const std::string& param, int64_t vocab) {
  std::vector<int> ids;
  for (const json& v : a) {
    if (!v.is_number_integer()) throw bad(param, "'" + param + "' token ids must be integers");
    const long long id = v.get<long long>();
    if (id < 0 || id >= vocab)
      throw bad(param, "'" + param + "' token id " + std::to_string(id) + " is outside the vocabulary of " +
                           std::to_string(vocab));
    ids.push_back(int(id));
  }
  if (ids.empty()) throw bad(param, "'" + param + "' must not be an empty list of token ids");
  return ids;
}

// prompt: "text" | [ids] | ["text", ...] | [[ids], ...]
void read_prompts(const json& body, const ApiContext& ctx, ApiRequest& r) {
  if (!body.contains("prompt")) throw bad("prompt", "'prompt' is required");
  const json& p = body["prompt"];
  auto text = [&](const std::string& s) {
    r.prompts.push_back(prompt_ids(*ctx.tok, s, {ctx.add_bos, false, false}));
    r.prompt_texts.push_back(s);
  };
  auto ids = [&](const json& a) {
    r.prompts.push_back(checked_ids(a, "prompt", ctx.vocab));
    r.prompt_texts.push_back(ctx.tok->decode(r.prompts.back()));
  };
  if (p.is_string()) text(p.get<std::string>());
  else if (p.is_array() && !p.empty() && p[0].is_number()) ids(p);
  else if (p.is_array() && !p.empty()) {
    for (const json& e : p) {
      if (e.is_string()) text(e.get<std::string>());
      else if (e.is_array()) ids(e);
      else throw bad("prompt", "'prompt' list entries must be strings or lists of token ids");
    }
  } else {
    throw bad("prompt", "'prompt' must be a string, a list of token ids, or a list of those (non-empty)");
  }
}

void read_messages(const json& body, const ApiContext& ctx, ApiRequest& r) {
  if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty())
    throw bad("messages", "'messages' must be a non-empty list of {role, content}");
  std::vector<ChatMessage> msgs;
  int i = 0;
  for (const json& m : body["messages"]) {
    const std::string where = "messages[" + std::to_string(i++) + "]";
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      throw bad(where + ".role", where + " needs a string 'role'");
    std::string role = m["role"].get<std::string>();
    if (role == "developer") role = "system";
    if (role != "system" && role != "user" && role != "assistant")
      throw bad(where + ".role", where + ".role must be system, developer, user or assistant, got '" + role + "'");
    std::string content;
    const json c = m.value("content", json());
    if (c.is_string()) content = c.get<std::string>();
    else if (c.is_array()) {
      for (const json& part : c) {
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
          throw bad(where + ".content", where + ".content parts must be {\"type\": \"text\", \"text\": ...}");
        content += part["text"].get<std::string>();
      }
    } else if (!c.is_null()) {
      throw bad(where + ".content", where + ".content must be a string or a list of text parts");
    }
    msgs.push_back({role, content});
  }
  if (detect_chat_family(*ctx.tok) == ChatFamily::none)
    throw bad("messages", "this model's tokenizer has no chat template hpcinfer knows (llama3, chatml): use "
                          "/v1/completions");
  r.prompts.push_back(chat_prompt_ids(*ctx.tok, msgs, ctx.add_bos));
  r.prompt_texts.push_back(ctx.tok->decode(r.prompts.back()));
}

const std::set<std::string>& known_fields(bool chat) {
  static const std::set<std::string> common{"model", "max_tokens", "temperature", "top_p", "top_k", "min_p", "seed",
                                            "stop", "n", "stream", "stream_options", "user", "presence_penalty",
                                            "frequency_penalty", "logit_bias", "logprobs"};
  static const std::set<std::string> completions = [] {
    auto s = common;
    s.insert({"prompt", "echo", "best_of", "suffix"});
    return s;
  }();
  static const std::set<std::string> chats = [] {
    auto s = common;
    s.insert({"messages", "top_logprobs", "max_completion_tokens", "response_format"});
    return s;
  }();
  return chat ? chats : completions;
}

}  // namespace

ApiError::ApiError(int status_, const std::string& message, std::string param_, std::string type_, std::string code_)
    : std::runtime_error(message), status(status_), type(std::move(type_)), param(std::move(param_)),
      code(std::move(code_)) {}

std::string error_json(const ApiError& e) {
  return json_text({{"error",
                {{"message", e.what()},
                 {"type", e.type},
                 {"param", e.param.empty() ? json(nullptr) : json(e.param)},
                 {"code", e.code.empty() ? json(nullptr) : json(e.code)}}}});
}

ApiRequest parse_request(const std::string& body_text, bool chat, const ApiContext& ctx) {
  json body;
  try {
    body = json::parse(body_text);
  } catch (const json::parse_error& e) {
    throw ApiError(400, std::string("the request body is not valid JSON: ") + e.what());
  }
  if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object");
  for (const auto& [key, value] : body.items())
    if (!known_fields(chat).count(key)) throw bad(key, "Unrecognized request argument supplied: " + key);
  if (present(body, "model")) {
    if (!body["model"].is_string()) throw bad("model", "'model' must be a string");
    if (body["model"].get<std::string>() != ctx.model_name)
      throw ApiError(404, "The model '" + body["model"].get<std::string>() + "' does not exist; this server serves '" +
                              ctx.model_name + "'", "model", "not_found_error", "model_not_found");
  }
  for (const char* k : {"presence_penalty", "frequency_penalty"}) {
    float v = 0;
    read_number(body, k, -2, 2, false, v);
    if (v != 0) throw bad(k, std::string("'") + k + "' is not supported (only 0)");
  }
  if (present(body, "logit_bias") && !(body["logit_bias"].is_object() && body["logit_bias"].empty()))
    throw bad("logit_bias", "'logit_bias' is not supported");
  if (present(body, "suffix")) throw bad("suffix", "'suffix' is not supported");
  if (present(body, "response_format") && body["response_format"].value("type", "") != "text")
    throw bad("response_format", "only {\"type\": \"text\"} is supported");

  ApiRequest r;
  r.chat = chat;
  GenerationParams& p = r.params;
  p = ctx.defaults;
  p.logprobs = false;
  p.top_logprobs = 0;
  p.prompt_logprobs = false;
  read_int(body, "n", 1, kMaxChoices, r.n);
  if (present(body, "best_of")) {
    int best_of = r.n;
    read_int(body, "best_of", 1, kMaxChoices, best_of);
    if (best_of != r.n) throw bad("best_of", "'best_of' other than n is not supported");
  }
  read_int(body, "max_tokens", 0, 1 << 30, p.max_new_tokens);
  if (chat) read_int(body, "max_completion_tokens", 0, 1 << 30, p.max_new_tokens);
  read_number(body, "temperature", 0, 100, false, p.sampling.temperature);
  read_number(body, "top_p", 0, 1, true, p.sampling.top_p);
  int top_k = p.sampling.top_k;
  read_int(body, "top_k", -1, 1 << 30, top_k);
  p.sampling.top_k = std::max(top_k, 0);  // -1 (vLLM's "off") = 0
  read_number(body, "min_p", 0, 1, false, p.sampling.min_p);
  if (p.sampling.min_p >= 1) throw bad("min_p", "'min_p' must be < 1");
  if (present(body, "seed")) {
    if (!body["seed"].is_number_integer()) throw bad("seed", "'seed' must be an integer");
    p.seed = body["seed"].is_number_unsigned() ? body["seed"].get<uint64_t>() : uint64_t(body["seed"].get<int64_t>());
    r.seed_given = true;
  }
  if (present(body, "stop")) {
    const json& s = body["stop"];
    p.stop_strings.clear();
    if (s.is_string()) p.stop_strings.push_back(s.get<std::string>());
    else if (s.is_array() && s.size() <= size_t(kMaxStops)) {
      for (const json& e : s) {
        if (!e.is_string()) throw bad("stop", "'stop' entries must be strings");
        p.stop_strings.push_back(e.get<std::string>());
      }
    } else {
      throw bad("stop", "'stop' must be a string or a list of at most " + std::to_string(kMaxStops) + " strings");
    }
    for (const std::string& x : p.stop_strings)
      if (x.empty()) throw bad("stop", "'stop' strings must not be empty");
  }
  read_bool(body, "stream", r.stream);
  if (present(body, "stream_options")) {
    const json& so = body["stream_options"];
    if (!so.is_object()) throw bad("stream_options", "'stream_options' must be an object");
    if (!r.stream) throw bad("stream_options", "'stream_options' is only allowed with stream: true");
    read_bool(so, "include_usage", r.include_usage);
  }
  if (chat) {
    read_bool(body, "logprobs", p.logprobs);
    read_int(body, "top_logprobs", 0, kMaxTopLogprobs, p.top_logprobs);
    if (present(body, "top_logprobs") && !p.logprobs)
      throw bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    read_messages(body, ctx, r);
  } else {
    if (present(body, "logprobs")) {
      read_int(body, "logprobs", 0, kMaxTopLogprobs, p.top_logprobs);
      p.logprobs = true;
    }
    read_bool(body, "echo", r.echo);
    p.prompt_logprobs = r.echo && p.logprobs;
    read_prompts(body, ctx, r);
  }
  if (r.choices() > kMaxChoices)
    throw bad("n", "prompts x n = " + std::to_string(r.choices()) + " choices; at most " + std::to_string(kMaxChoices));
  for (const auto& ids : r.prompts)
    if (int(ids.size()) >= ctx.max_ctx)
      throw ApiError(413,
                     "This model's maximum context length is " + std::to_string(ctx.max_ctx) +
                         " tokens; the prompt has " + std::to_string(ids.size()) +
                         " (at least one token must be left to generate)",
                     chat ? "messages" : "prompt", "invalid_request_error", "context_length_exceeded");
  return r;
}

// ---- responses ----

ResponseBuilder::ResponseBuilder(const ApiRequest& req, const ApiContext& ctx, std::string id, long created)
    : req_(req), ctx_(ctx), id_(std::move(id)), created_(created), choices_(size_t(req.choices())) {
  for (Choice& c : choices_) {
    c.logprobs = req.chat ? json::array()
                          : json{{"tokens", json::array()},
                                 {"token_logprobs", json::array()},
                                 {"top_logprobs", json::array()},
                                 {"text_offset", json::array()}};
  }
}

json ResponseBuilder::logprob_entries(Choice& ch, const std::vector<int>& ids,
                                      const std::vector<std::optional<TokenLogprobs>>& lps) {
  json out = req_.chat ? json::array()
                       : json{{"tokens", json::array()},
                              {"token_logprobs", json::array()},
                              {"top_logprobs", json::array()},
                              {"text_offset", json::array()}};
  for (size_t i = 0; i < ids.size(); ++i) {
    const int prev = ch.prev;  // the alternatives' text is read at the same place as the token's
    const std::string piece = ctx_.tok->decode_token(prev, ids[i]);
    ch.prev = ids[i];
    const std::optional<TokenLogprobs>& lp = lps[i];
    if (req_.chat) {
      json top = json::array();
      if (lp)
        for (const auto& [id, v] : lp->top) {
          const std::string t = ctx_.tok->decode_token(prev, id);
          top.push_back({{"token", t}, {"logprob", v}, {"bytes", std::vector<uint8_t>(t.begin(), t.end())}});
        }
      out.push_back({{"token", piece},
                     {"logprob", lp ? json(lp->logprob) : json(nullptr)},
                     {"bytes", std::vector<uint8_t>(piece.begin(), piece.end())},
                     {"top_logprobs", top}});
    } else {
      out["tokens"].push_back(piece);
      out["token_logprobs"].push_back(lp ? json(lp->logprob) : json(nullptr));
      json top = lp ? json::object() : json(nullptr);
      if (lp)
        for (const auto& [id, v] : lp->top) top[ctx_.tok->decode_token(prev, id)] = v;
      out["top_logprobs"].push_back(top);
      out["text_offset"].push_back(ch.offset);
    }
    ch.offset += piece.size();
  }
  return out;
}

static void append_entries(json& into, const json& more, bool chat) {
  if (chat) {
    for (const json& e : more) into.push_back(e);
    return;
  }
  for (const char* k : {"tokens", "token_logprobs", "top_logprobs", "text_offset"})
    for (const json& e : more[k]) into[k].push_back(e);
}

json ResponseBuilder::chunk(int choice, json body) const {
  body["index"] = choice;
  return {{"id", id_},
          {"object", req_.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", created_},
          {"model", ctx_.model_name},
          {"choices", json::array({std::move(body)})}};
}

std::string ResponseBuilder::on_event(int c, const TokenEvent& e) {
  Choice& ch = choices_.at(size_t(c));
  const int prompt = c / req_.n;
  std::string delta;  // text this event adds to the choice
  json entries = req_.chat ? json::array() : json::object();
  const bool first = !ch.started;
  if (first && req_.echo) {  // the prompt first: its text, and its tokens' logprobs when asked
    delta += req_.prompt_texts[size_t(prompt)];
    if (req_.params.logprobs) {
      std::vector<std::optional<TokenLogprobs>> lps = e.prompt_logprobs;
      lps.resize(req_.prompts[size_t(prompt)].size());
      entries = logprob_entries(ch, req_.prompts[size_t(prompt)], lps);
    } else {
      ch.prev = req_.prompts[size_t(prompt)].back();
    }
  } else if (first) {
    ch.prev = req_.prompts[size_t(prompt)].back();
  }
  if (e.token >= 0) {
    ++ch.tokens;
    if (req_.params.logprobs) {
      const json more = logprob_entries(ch, {e.token}, {e.logprobs});
      if (entries.empty()) entries = more;
      else append_entries(entries, more, req_.chat);
    } else {
      ch.prev = e.token;
    }
  }
  delta += e.text;
  ch.text += delta;
  if (e.finished) ch.finish_reason = e.finish_reason;
  const bool with_lp = req_.params.logprobs && !entries.empty();
  if (!req_.stream) {
    if (with_lp) append_entries(ch.logprobs, entries, req_.chat);
    ch.started = true;
    return "";
  }
  std::string out;
  const json finish = e.finished ? json(e.finish_reason) : json(nullptr);
  if (req_.chat) {
    if (first)
      out += "data: " + json_text(chunk(c, {{"delta", {{"role", "assistant"}, {"content", ""}}}, {"logprobs", nullptr},
                                       {"finish_reason", nullptr}})) + "\n\n";
    if (!delta.empty() || with_lp || e.finished) {
      json d = delta.empty() ? json::object() : json{{"content", delta}};
      out += "data: " + json_text(chunk(c, {{"delta", d},
                                        {"logprobs", with_lp ? json{{"content", entries}} : json(nullptr)},
                                        {"finish_reason", finish}})) + "\n\n";
    }
  } else if (!delta.empty() || with_lp || e.finished) {
    out += "data: " + json_text(chunk(c, {{"text", delta}, {"logprobs", with_lp ? entries : json(nullptr)},
                                     {"finish_reason", finish}})) + "\n\n";
  }
  ch.started = true;
  return out;
}

int ResponseBuilder::completion_tokens() const {
  int n = 0;
  for (const Choice& c : choices_) n += c.tokens;
  return n;
}

int ResponseBuilder::prompt_tokens() const {
  int n = 0;
  for (const auto& p : req_.prompts) n += int(p.size());
  return n;
}

static json usage_json(int prompt, int completion) {
  return {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
}

std::string ResponseBuilder::stream_end() const {
  std::string out;
  if (req_.include_usage)
    out += "data: " + json_text({{"id", id_},
                            {"object", req_.chat ? "chat.completion.chunk" : "text_completion"},
                            {"created", created_},
                            {"model", ctx_.model_name},
                            {"choices", json::array()},
                            {"usage", usage_json(prompt_tokens(), completion_tokens())}}) + "\n\n";
  return out + "data: [DONE]\n\n";
}

std::string ResponseBuilder::response_json() const {
  json choices = json::array();
  for (size_t c = 0; c < choices_.size(); ++c) {
    const Choice& ch = choices_[c];
    const json lp = req_.params.logprobs ? (req_.chat ? json{{"content", ch.logprobs}} : ch.logprobs) : json(nullptr);
    if (req_.chat)
      choices.push_back({{"index", c},
                         {"message", {{"role", "assistant"}, {"content", ch.text}}},
                         {"logprobs", lp},
                         {"finish_reason", ch.finish_reason}});
    else
      choices.push_back({{"index", c}, {"text", ch.text}, {"logprobs", lp}, {"finish_reason", ch.finish_reason}});
  }
  return json_text({{"id", id_},
               {"object", req_.chat ? "chat.completion" : "text_completion"},
               {"created", created_},
               {"model", ctx_.model_name},
               {"choices", choices},
               {"usage", usage_json(prompt_tokens(), completion_tokens())}});
}

}  // namespace hpcinfer::serve
