// hpcinfer serve's pieces without sockets: the OpenAI request reader (every error names its field), the response
// writer, the request book's limits and cancellation, the Prometheus histogram. The HTTP server itself is tested
// end to end with real clients in tests/serve/test_serve.py.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <thread>

#include "core/serve/openai_api.hpp"
#include "core/serve/request_book.hpp"
#include "core/serve/serve_metrics.hpp"
#include "core/tokenizer/tokenizer.hpp"
#include "support/test_support.hpp"

namespace hpcinfer::serve {
namespace {
using nlohmann::json;

class ServeApi : public ::testing::Test {
 protected:
  void SetUp() override {
    HPCINFER_REQUIRE_DATA("models/stories260K/tok512.bin");
    tok_ = load_llama2c_tokenizer((test::shared_data() / "models/stories260K/tok512.bin").string(), 512);
    ctx_.tok = tok_.get();
    ctx_.model_name = "m";
    ctx_.max_ctx = 64;
    ctx_.vocab = 512;
    ctx_.defaults.max_new_tokens = 7;
  }
  // The status and param of the ApiError the body raises (0 when none).
  std::pair<int, std::string> error_of(const std::string& body, bool chat = false) {
    try {
      parse_request(body, chat, ctx_);
    } catch (const ApiError& e) {
      return {e.status, e.param};
    }
    return {0, ""};
  }
  std::unique_ptr<Tokenizer> tok_;
  ApiContext ctx_;
};

TEST_F(ServeApi, ReadsTheFieldsAndTakesTheConfigurationsDefaults) {
  ApiRequest r = parse_request(R"({"prompt": "Once upon", "temperature": 0.5, "top_k": -1, "seed": 3, "n": 2,
                                   "stop": ["x", "yz"], "logprobs": 2, "echo": true, "stream": true,
                                   "stream_options": {"include_usage": true}})",
                               false, ctx_);
  EXPECT_EQ(r.params.max_new_tokens, 7);  // generation.max_new_tokens
  EXPECT_FLOAT_EQ(r.params.sampling.temperature, 0.5f);
  EXPECT_EQ(r.params.sampling.top_k, 0);  // -1 = off
  EXPECT_TRUE(r.seed_given);
  EXPECT_EQ(r.params.seed, 3u);
  EXPECT_EQ(r.n, 2);
  EXPECT_EQ(r.params.stop_strings, (std::vector<std::string>{"x", "yz"}));
  EXPECT_TRUE(r.params.logprobs);
  EXPECT_EQ(r.params.top_logprobs, 2);
  EXPECT_TRUE(r.params.prompt_logprobs);  // echo with logprobs
  EXPECT_TRUE(r.stream && r.include_usage);
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(r.prompts[0], tok_->encode("Once upon", tok_->add_bos()));
  EXPECT_EQ(r.choices(), 2);
  ApiRequest ids = parse_request(R"({"prompt": [[1, 2, 3], [4]], "max_tokens": 0})", false, ctx_);
  EXPECT_EQ(ids.prompts, (std::vector<std::vector<int>>{{1, 2, 3}, {4}}));
  EXPECT_EQ(ids.params.max_new_tokens, 0);
}

TEST_F(ServeApi, EveryBadFieldIsNamedWithItsStatus) {
  EXPECT_EQ(error_of("{\"prompt\": "), std::make_pair(400, std::string()));
  EXPECT_EQ(error_of("[]"), std::make_pair(400, std::string()));
  EXPECT_EQ(error_of(R"({"prompt": "a", "max_tokens": -1})"), std::make_pair(400, std::string("max_tokens")));
  EXPECT_EQ(error_of(R"({"prompt": "a", "max_tokens": 1.5})"), std::make_pair(400, std::string("max_tokens")));
  EXPECT_EQ(error_of(R"({"prompt": "a", "top_p": 0})"), std::make_pair(400, std::string("top_p")));
  EXPECT_EQ(error_of(R"({"prompt": "a", "min_p": 1})"), std::make_pair(400, std::string("min_p")));
  EXPECT_EQ(error_of(R"({"prompt": "a", "n": 0})"), std::make_pair(400, std::string("n")));
  EXPECT_EQ(error_of(R"({"prompt": "a", "logprobs": 21})"), std::make_pair(400, std::string("logprobs")));
  EXPECT_EQ(error_of(R"({"prompt": "a", "stop": [""]})"), std::make_pair(400, std::string("stop")));
  EXPECT_EQ(error_of(R"({"prompt": "a", "bogus": 1})"), std::make_pair(400, std::string("bogus")));
  EXPECT_EQ(error_of(R"({"prompt": "a", "frequency_penalty": 0.5})"), std::make_pair(400, std::string("frequency_penalty")));
  EXPECT_EQ(error_of(R"({"prompt": "a", "stream_options": {}})"), std::make_pair(400, std::string("stream_options")));
  EXPECT_EQ(error_of(R"({"prompt": [0, 512]})"), std::make_pair(400, std::string("prompt")));
  EXPECT_EQ(error_of(R"({"prompt": []})"), std::make_pair(400, std::string("prompt")));
  EXPECT_EQ(error_of(R"({"prompt": "a", "model": "other"})"), std::make_pair(404, std::string("model")));
  json long_prompt{{"prompt", std::vector<int>(64, 1)}};
  EXPECT_EQ(error_of(long_prompt.dump()), std::make_pair(413, std::string("prompt")));  // no room to generate
  EXPECT_EQ(error_of(R"({"messages": []})", true), std::make_pair(400, std::string("messages")));
  EXPECT_EQ(error_of(R"({"messages": [{"role": "robot", "content": "x"}]})", true),
            std::make_pair(400, std::string("messages[0].role")));
  EXPECT_EQ(error_of(R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})", true),
            std::make_pair(400, std::string("top_logprobs")));
  // stories260K's tokenizer has no chat template: named, not guessed.
  EXPECT_EQ(error_of(R"({"messages": [{"role": "user", "content": "x"}]})", true),
            std::make_pair(400, std::string("messages")));
  const json e = json::parse(error_json(ApiError(429, "busy", "", "rate_limit_error")));
  EXPECT_EQ(e["error"]["message"], "busy");
  EXPECT_EQ(e["error"]["type"], "rate_limit_error");
  EXPECT_TRUE(e["error"]["param"].is_null());
}

TEST_F(ServeApi, ResponsesCarryTextLogprobsAndUsage) {
  ApiRequest r = parse_request(R"({"prompt": "Once", "logprobs": 1, "echo": true, "max_tokens": 2})", false, ctx_);
  ResponseBuilder b(r, ctx_, "cmpl-1", 5);
  const std::vector<int>& p = r.prompts[0];
  TokenEvent e1;
  e1.token = 300;
  e1.text = tok_->decode_token(p.back(), 300);
  e1.logprobs = TokenLogprobs{300, -0.5, {{300, -0.5}}};
  e1.prompt_logprobs.resize(p.size());
  for (size_t i = 1; i < p.size(); ++i) e1.prompt_logprobs[i] = TokenLogprobs{p[i], -1.0, {{p[i], -1.0}}};
  EXPECT_EQ(b.on_event(0, e1), "");  // not streaming: collected
  TokenEvent e2;
  e2.finished = true;
  e2.finish_reason = "stop";  // a stop token: no token, no text
  b.on_event(0, e2);
  const json j = json::parse(b.response_json());
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["text"], "Once" + e1.text);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  const json& lp = j["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), p.size() + 1);  // the prompt's tokens, then the generated one
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());
  EXPECT_DOUBLE_EQ(lp["token_logprobs"][p.size()].get<double>(), -0.5);
  EXPECT_EQ(j["usage"]["prompt_tokens"], int(p.size()));
  EXPECT_EQ(j["usage"]["completion_tokens"], 1);
}

TEST_F(ServeApi, ChatStreamsTheRoleFirstThenContentThenDone) {
  ApiContext ctx = ctx_;
  ApiRequest r;
  r.chat = true;
  r.stream = true;
  r.include_usage = true;
  r.prompts = {{1, 2}};
  r.prompt_texts = {"x"};
  ResponseBuilder b(r, ctx, "chatcmpl-1", 5);
  TokenEvent e;
  e.token = 300;
  e.text = "ab";
  std::string out = b.on_event(0, e);
  e.token = -1;
  e.text = "";
  e.finished = true;
  e.finish_reason = "length";
  out += b.on_event(0, e) + b.stream_end();
  std::vector<json> chunks;
  for (size_t at = 0; (at = out.find("data: ", at)) != std::string::npos; at += 6) {
    const std::string line = out.substr(at + 6, out.find("\n\n", at) - at - 6);
    if (line != "[DONE]") chunks.push_back(json::parse(line));
  }
  ASSERT_EQ(chunks.size(), 4u);  // role, content, finish, usage
  EXPECT_EQ(chunks[0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(chunks[1]["choices"][0]["delta"]["content"], "ab");
  EXPECT_EQ(chunks[2]["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(chunks[3]["usage"]["completion_tokens"], 1);
  EXPECT_NE(out.rfind("data: [DONE]\n\n"), std::string::npos);
}

Request request_of(int tokens) {
  Request r;
  r.prompt_ids.assign(size_t(tokens), 1);
  return r;
}

TEST(RequestBook, QueueLimitsAnswer429And503AndCancelFreesEverything) {
  ServeMetrics m(2);
  RequestBook book(/*slots=*/2, /*max_waiting=*/1, m);
  auto a = book.submit({request_of(3), request_of(3)});  // fill the two free slots' worth
  auto b = book.submit({request_of(3)});                 // and the one queue place
  try {
    book.submit({request_of(3)});
    FAIL() << "a fourth request fits neither slots nor queue";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 429);
  }
  // The engine takes two into slots: the queue holds one, so one more fits again.
  auto r0 = book.next(0), r1 = book.next(0);
  ASSERT_TRUE(r0 && r1);
  EXPECT_EQ(book.running(), 2);
  EXPECT_EQ(book.waiting(), 1);
  EXPECT_THROW(book.submit({request_of(3), request_of(3)}), ApiError);
  try {  // more than slots + queue could ever hold: 400, retrying would not help
    book.submit({request_of(1), request_of(1), request_of(1), request_of(1)});
    FAIL() << "four choices never fit two slots and one queue place";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.param, "n");
  }
  // Cancelling a channel: its queued requests leave at once, its running ones are handed to the engine to drop.
  book.cancel(a, "cancelled");
  EXPECT_TRUE(a->done());
  EXPECT_EQ(book.running(), 0);
  std::vector<int> dropped = book.take_cancelled();
  std::sort(dropped.begin(), dropped.end());
  EXPECT_EQ(dropped, (std::vector<int>{r0->index, r1->index}));
  // Events route to their channel in order; a finished request leaves the book.
  auto r2 = book.next(0);
  ASSERT_TRUE(r2);
  TokenEvent e;
  e.request = r2->index;
  e.token = 5;
  e.text = "x";
  book.deliver({e});
  e.finished = true;
  e.finish_reason = "length";
  book.deliver({e});
  const auto items = b->wait(Clock::now());
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].choice, 0);
  EXPECT_TRUE(b->done());
  EXPECT_EQ(book.load(), 0);
  book.close();
  EXPECT_TRUE(book.ended());
  try {
    book.submit({request_of(1)});
    FAIL() << "a closed book takes nothing";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 503);
  }
  const std::string text = m.text();
  EXPECT_NE(text.find("hpcinfer:request_success_total{finished_reason=\"length\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("hpcinfer:request_failure_total{reason=\"cancelled\"} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("hpcinfer:request_failure_total{reason=\"rejected\"} 4"), std::string::npos) << text;
}

TEST(RequestBook, AnIdleEngineWaitsForTheNextRequest) {
  ServeMetrics m(1);
  RequestBook book(1, 4, m);
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    book.submit({request_of(2)});
  });
  const auto r = book.next(5.0);  // wakes when the request arrives, long before 5 s
  t.join();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->prompt_ids.size(), 2u);
  EXPECT_FALSE(book.next(0.01).has_value());
}

TEST(ServeMetrics, HistogramBucketsAreCumulative) {
  Histogram h({0.1, 1.0});
  for (double v : {0.05, 0.5, 0.7, 3.0}) h.observe(v);
  const std::string t = h.text("x", "help");
  EXPECT_NE(t.find("x_bucket{le=\"0.1\"} 1"), std::string::npos) << t;
  EXPECT_NE(t.find("x_bucket{le=\"1\"} 3"), std::string::npos) << t;
  EXPECT_NE(t.find("x_bucket{le=\"+Inf\"} 4"), std::string::npos) << t;
  EXPECT_NE(t.find("x_count 4"), std::string::npos) << t;
}

}  // namespace
}  // namespace hpcinfer::serve
