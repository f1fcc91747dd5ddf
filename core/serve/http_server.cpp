#include "core/serve/http_server.hpp"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include "core/runtime/json_text.hpp"
#include "core/tokenizer/prompt_ids.hpp"

namespace hpcinfer::serve {
namespace {
using nlohmann::json;

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(error_json(e), "application/json");
}

// Response ids and the seeds of requests that give none.
uint64_t random_u64() {
  static std::mt19937_64 rng{std::random_device{}()};
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  return rng();
}

std::string random_id(const char* prefix) {
  char b[40];
  std::snprintf(b, sizeof b, "%s-%016llx", prefix, static_cast<unsigned long long>(random_u64()));
  return b;
}

long unix_now() {
  return long(std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

// The engine requests of an API request: choice c = prompt c / n, sample c % n.
std::vector<Request> engine_requests(const ApiRequest& api, const std::string& id) {
  std::vector<Request> out;
  for (size_t p = 0; p < api.prompts.size(); ++p)
    for (int j = 0; j < api.n; ++j) {
      Request r;
      r.id = id + "." + std::to_string(out.size());
      r.prompt = api.prompt_texts[p];
      r.prompt_ids = api.prompts[p];
      r.params = api.params;
      r.params.seed = api.seed_given ? api.params.seed + uint64_t(out.size()) : random_u64();
      out.push_back(std::move(r));
    }
  return out;
}

// One streaming response's state between the calls of its content provider.
struct StreamState {
  ApiRequest api;
  std::shared_ptr<Channel> ch;
  std::unique_ptr<ResponseBuilder> rb;
  Clock::time_point deadline;
  bool finished = false;
};

}  // namespace

class OpenAiServer::Impl {
 public:
  Impl(ServerOptions opt, const ApiContext& ctx, RequestBook& book, ServeMetrics& metrics, Replicas* replicas)
      : opt_(std::move(opt)), ctx_(ctx), book_(book), metrics_(metrics), replicas_(replicas) {
    const int threads = opt_.connection_threads;
    svr_.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
    svr_.set_payload_max_length(opt_.max_body_bytes);
    svr_.set_write_timeout(std::chrono::milliseconds(int64_t(opt_.write_timeout_s * 1000)));
    svr_.set_read_timeout(std::chrono::seconds(30));
    // Keep-alive for a minute: with httplib 0.11's 5 s, 64 closed-loop streaming clients (the openai package's
    // httpx pool) lost 18-25% of their requests to read errors on pooled connections closed as they were reused.
    // stop() does not wait out idle connections.
    svr_.set_keep_alive_max_count(100000);
    svr_.set_keep_alive_timeout(65);
    // httplib listens with a backlog of 5 (compiled in): 64 clients connecting at once on loaded cores overflowed
    // it (TcpExtListenOverflows) and lost connections; bind() listens again with the system's maximum.
    svr_.set_socket_options([this](socket_t sock) {
      httplib::default_socket_options(sock);
      listen_fd_ = sock;
    });
    svr_.Post("/v1/completions", [this](const httplib::Request& q, httplib::Response& r) { completions(q, r, false); });
    svr_.Post("/v1/chat/completions", [this](const httplib::Request& q, httplib::Response& r) { completions(q, r, true); });
    svr_.Get("/v1/models", [this](const httplib::Request&, httplib::Response& r) { models(r); });
    svr_.Get("/health", [this](const httplib::Request&, httplib::Response& r) { health(r); });
    svr_.Get("/metrics", [this](const httplib::Request&, httplib::Response& r) {
      r.set_content(metrics_.text(), "text/plain; version=0.0.4");
    });
    svr_.Post("/tokenize", [this](const httplib::Request& q, httplib::Response& r) { tokenize(q, r); });
    svr_.Post("/detokenize", [this](const httplib::Request& q, httplib::Response& r) { detokenize(q, r); });
    svr_.Get("/tokenizer_info", [this](const httplib::Request&, httplib::Response& r) { tokenizer_info(r); });
    svr_.set_error_handler([](const httplib::Request& q, httplib::Response& r) {
      if (!r.body.empty()) return;
      if (r.status == 404) send_error(r, ApiError(404, "no route " + q.method + " " + q.path, "", "not_found_error"));
      else if (r.status == 413) send_error(r, ApiError(413, "the request body is larger than the server takes"));
      else if (r.status >= 400) send_error(r, ApiError(r.status, "the request could not be read (HTTP " + std::to_string(r.status) + ")"));
    });
    svr_.set_exception_handler([](const httplib::Request&, httplib::Response& r, std::exception_ptr ep) {
      std::string what = "internal error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      send_error(r, ApiError(500, what, "", "server_error"));
    });
  }

  int bind() {
    const int port = opt_.port == 0 ? svr_.bind_to_any_port(opt_.host) : (svr_.bind_to_port(opt_.host, opt_.port) ? opt_.port : -1);
    if (port < 0)
      throw std::runtime_error("serve: cannot listen on " + opt_.host + ":" + std::to_string(opt_.port) +
                               " (in use, or not an address of this host): set serve.port / --port");
    if (listen_fd_ >= 0) ::listen(listen_fd_, SOMAXCONN);  // a longer accept queue (see the constructor)
    return port;
  }
  void start() {
    thread_ = std::thread([this] {
      svr_.listen_after_bind();
      listening_ = false;
    });
  }
  // The responses in progress finish first (SIGTERM: the engine has finished their requests). Then the listening
  // socket closes; httplib's threads still holding idle keep-alive connections (up to a minute) are not waited for:
  // false means they are still there and this object must outlive the process (the caller exits).
  bool stop() {
    for (int i = 0; i < 300 && active_ > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    svr_.stop();
    for (int i = 0; i < 20 && listening_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (listening_) {
      thread_.detach();
      return false;
    }
    if (thread_.joinable()) thread_.join();
    return true;
  }
  void set_ready(bool r) { ready_ = r; }

 private:
  void health(httplib::Response& r) {
    const bool ok = ready_ && (!replicas_ || replicas_->all_ready());
    r.status = ok ? 200 : 503;
    r.set_content(json_text({{"status", ok ? "ok" : "loading"}}), "application/json");
  }

  void models(httplib::Response& r) {
    r.set_content(json_text({{"object", "list"},
                        {"data", json::array({{{"id", ctx_.model_name},
                                               {"object", "model"},
                                               {"created", unix_now()},
                                               {"owned_by", "hpcinfer"},
                                               {"max_model_len", ctx_.max_ctx}}})}}),
                  "application/json");
  }

  // llama.cpp's shape ({"content", "add_special"} -> {"tokens"}) and vLLM's ({"prompt", "add_special_tokens"}), which
  // lm-evaluation-harness's remote tokenizer speaks. BOS: as asked, else the model files' setting, as prompts get it.
  void tokenize(const httplib::Request& q, httplib::Response& r) {
    try {
      const json b = json::parse(q.body);
      const char* text_key = b.is_object() && b.contains("prompt") ? "prompt" : "content";
      if (!b.is_object() || !b.contains(text_key) || !b[text_key].is_string())
        throw ApiError(400, "'content' (or 'prompt') must be a string", text_key);
      std::string bos = ctx_.add_bos;
      for (const char* k : {"add_special", "add_special_tokens"})
        if (b.contains(k)) {
          if (!b[k].is_boolean()) throw ApiError(400, std::string("'") + k + "' must be a boolean", k);
          bos = b[k].get<bool>() ? "true" : "false";
        }
      const std::string text = b[text_key].get<std::string>();
      std::vector<int> ids = prompt_ids(*ctx_.tok, text, {bos, false, false});
      if (text.empty() && bos == "false") ids.clear();
      r.set_content(json_text({{"tokens", ids}, {"count", ids.size()}, {"max_model_len", ctx_.max_ctx}}), "application/json");
    } catch (const json::exception& e) {
      send_error(r, ApiError(400, std::string("the request body is not valid JSON: ") + e.what()));
    } catch (const ApiError& e) {
      send_error(r, e);
    }
  }

  void detokenize(const httplib::Request& q, httplib::Response& r) {
    try {
      const json b = json::parse(q.body);
      if (!b.is_object() || !b.contains("tokens") || !b["tokens"].is_array())
        throw ApiError(400, "'tokens' must be a list of token ids", "tokens");
      std::vector<int> ids;
      for (const json& v : b["tokens"]) {
        if (!v.is_number_integer() || v.get<long long>() < 0 || v.get<long long>() >= ctx_.vocab)
          throw ApiError(400, "'tokens' must hold token ids in [0, " + std::to_string(ctx_.vocab) + ")", "tokens");
        ids.push_back(v.get<int>());
      }
      const std::string text = ctx_.tok->decode(ids);
      r.set_content(json_text({{"content", text}, {"prompt", text}}), "application/json");
    } catch (const json::exception& e) {
      send_error(r, ApiError(400, std::string("the request body is not valid JSON: ") + e.what()));
    } catch (const ApiError& e) {
      send_error(r, e);
    }
  }

  // vLLM's GET /tokenizer_info (what lm-evaluation-harness's remote tokenizer reads): the special tokens' text.
  void tokenizer_info(httplib::Response& r) {
    auto text_of = [&](int id) { return id >= 0 ? json(ctx_.tok->piece(id)) : json(nullptr); };
    r.set_content(json_text({{"bos_token", text_of(ctx_.tok->bos_id())},
                        {"eos_token", text_of(ctx_.tok->eos_id())},
                        {"pad_token", nullptr},
                        {"model_max_length", ctx_.max_ctx}}),
                  "application/json");
  }

  void completions(const httplib::Request& q, httplib::Response& res, bool chat) {
    ++active_;
    completions_counted(q, res, chat);
  }

  // active_ was counted up: it goes down once the response is complete (for a stream: when its provider is released).
  void completions_counted(const httplib::Request& q, httplib::Response& res, bool chat) {
    ApiRequest api;
    try {
      if (!ready_) throw ApiError(503, "the model is still loading; GET /health says when it is ready", "", "server_error");
      api = parse_request(q.body, chat, ctx_);
    } catch (const ApiError& e) {
      send_error(res, e);
      --active_;
      return;
    }
    if (!replicas_) {
      local(std::move(api), res, [this] { --active_; });
      return;
    }
    const int choices = api.choices();
    if (choices > replicas_->capacity()) {
      metrics_.request_failed("rejected");
      send_error(res, never_fits(choices, replicas_->capacity()));
      --active_;
      return;
    }
    const int replica = replicas_->acquire(choices);
    if (replica < 0) {
      metrics_.request_failed("rejected");
      send_error(res, ApiError(429, "every replica is busy; retry later", "", "rate_limit_error"));
      --active_;
      return;
    }
    metrics_.dispatched(replica, choices);
    auto release = [this, replica, choices] {
      replicas_->release(replica, choices);
      --active_;
    };
    if (replica == 0) local(std::move(api), res, release);
    else proxy(replica, q.path, q.body, api.stream, res, release);
  }

  // This process's engine. on_done runs once the response is complete or abandoned.
  void local(ApiRequest api, httplib::Response& res, std::function<void()> on_done) {
    const std::string id = random_id(api.chat ? "chatcmpl" : "cmpl");
    auto st = std::make_shared<StreamState>();
    st->api = std::move(api);
    try {
      st->ch = book_.submit(engine_requests(st->api, id));
    } catch (const ApiError& e) {
      send_error(res, e);
      on_done();
      return;
    }
    st->rb = std::make_unique<ResponseBuilder>(st->api, ctx_, id, unix_now());
    st->deadline = Clock::now() + std::chrono::milliseconds(int64_t(opt_.request_timeout_s * 1000));
    if (!st->api.stream) {
      bool timed_out = false;
      for (;;) {
        for (Channel::Item& it : st->ch->wait(std::min(st->deadline, Clock::now() + std::chrono::seconds(1))))
          st->rb->on_event(it.choice, it.event);
        if (st->ch->done()) break;
        if (Clock::now() >= st->deadline) {
          timed_out = true;
          break;
        }
      }
      for (Channel::Item& it : st->ch->wait(Clock::now())) st->rb->on_event(it.choice, it.event);
      if (timed_out) {
        book_.cancel(st->ch, "timeout");
        send_error(res, ApiError(504, "the request ran longer than serve.request_timeout_s (" +
                                          std::to_string(opt_.request_timeout_s) + " s)", "", "timeout_error"));
      } else if (!st->ch->error().empty()) {
        send_error(res, ApiError(500, "the engine failed: " + st->ch->error(), "", "server_error"));
      } else {
        res.set_content(st->rb->response_json(), "application/json");
      }
      on_done();
      return;
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, st](size_t, httplib::DataSink& sink) {
          std::string out;
          for (Channel::Item& it : st->ch->wait(std::min(st->deadline, Clock::now() + std::chrono::milliseconds(500))))
            out += st->rb->on_event(it.choice, it.event);
          const bool done = st->ch->done();
          if (done && !st->ch->error().empty()) {
            out += "data: " + error_json(ApiError(500, "the engine failed: " + st->ch->error(), "", "server_error")) +
                   "\n\ndata: [DONE]\n\n";
          } else if (!done && Clock::now() >= st->deadline) {
            book_.cancel(st->ch, "timeout");
            out += "data: " + error_json(ApiError(504, "the request ran longer than serve.request_timeout_s", "",
                                                  "timeout_error")) + "\n\ndata: [DONE]\n\n";
            st->finished = true;
          } else if (done) {
            for (Channel::Item& it : st->ch->wait(Clock::now())) out += st->rb->on_event(it.choice, it.event);
            out += st->rb->stream_end();
          }
          if (!out.empty() && !sink.write(out.data(), out.size())) return false;  // client gone: released below
          if (done || st->finished) {
            st->finished = true;
            sink.done();
          }
          return true;
        },
        [this, st, on_done](bool success) {
          if (!success || !st->finished) book_.cancel(st->ch, "cancelled");
          on_done();
        });
  }

  // Another replica's leader, over HTTP: the body as it came, the answer as it goes.
  void proxy(int replica, const std::string& path, const std::string& body, bool stream, httplib::Response& res,
             std::function<void()> on_done) {
    const std::string address = replicas_->address(replica);
    const size_t colon = address.rfind(':');
    const std::string host = address.substr(0, colon);
    const int port = std::atoi(address.c_str() + colon + 1);
    const auto timeout = std::chrono::milliseconds(int64_t(opt_.request_timeout_s * 1000) + 5000);
    if (!stream) {
      httplib::Client cli(host, port);
      cli.set_read_timeout(timeout);
      auto r = cli.Post(path, body, "application/json");
      if (!r) send_error(res, ApiError(502, "replica " + std::to_string(replica) + " at " + address + " did not answer: " +
                                                httplib::to_string(r.error()), "", "server_error"));
      else {
        res.status = r->status;
        res.set_content(r->body, "application/json");
      }
      on_done();
      return;
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [=](size_t, httplib::DataSink& sink) {
          httplib::Client cli(host, port);
          cli.set_read_timeout(timeout);
          httplib::Request preq;
          preq.method = "POST";
          preq.path = path;
          preq.body = body;
          preq.set_header("Content-Type", "application/json");
          int status = 0;
          std::string err_body;
          preq.response_handler = [&](const httplib::Response& r) {
            status = r.status;
            return true;
          };
          preq.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
            if (status != 200) {
              err_body.append(d, n);
              return true;
            }
            return sink.write(d, n);  // false: our client went away, the replica's connection closes with it
          };
          httplib::Response pres;
          httplib::Error error = httplib::Error::Success;
          const bool ok = cli.send(preq, pres, error);
          if (!ok && status == 200) return false;
          if (!ok || status != 200) {
            const std::string e = ok ? "data: " + err_body + "\n\ndata: [DONE]\n\n"
                                     : "data: " + error_json(ApiError(502, "replica " + std::to_string(replica) +
                                                                                " did not answer: " +
                                                                                httplib::to_string(error), "",
                                                                      "server_error")) + "\n\ndata: [DONE]\n\n";
            if (!sink.write(e.data(), e.size())) return false;
          }
          sink.done();
          return true;
        },
        [on_done](bool) { on_done(); });
  }

  ServerOptions opt_;
  const ApiContext& ctx_;
  RequestBook& book_;
  ServeMetrics& metrics_;
  Replicas* replicas_;
  httplib::Server svr_;
  std::thread thread_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> listening_{true};
  int listen_fd_ = -1;  // the listening socket (set by the socket options callback)
  std::atomic<int> active_{0};  // completions whose response is not complete
};

OpenAiServer::OpenAiServer(ServerOptions opt, const ApiContext& ctx, RequestBook& book, ServeMetrics& metrics,
                           Replicas* replicas)
    : impl_(std::make_unique<Impl>(std::move(opt), ctx, book, metrics, replicas)) {}
OpenAiServer::~OpenAiServer() {
  if (impl_ && !impl_->stop()) (void)impl_.release();  // its threads wait on idle connections until the process ends
}
int OpenAiServer::bind() { return impl_->bind(); }
void OpenAiServer::start() { impl_->start(); }
void OpenAiServer::stop() {
  if (impl_ && !impl_->stop()) (void)impl_.release();
}
void OpenAiServer::set_ready(bool ready) { impl_->set_ready(ready); }

}  // namespace hpcinfer::serve
