// hpcinfer serve's HTTP side (cpp-httplib, Debian's libcpp-httplib-dev: a thread per connection suits a server whose
// clients wait on the engine; Boost.Beast would need the same threads written by hand). Routes:
//   POST /v1/completions, POST /v1/chat/completions   OpenAI's (openai_api.hpp), streamed as server-sent events
//   GET  /v1/models, GET /health (200 once the weights are loaded, else 503), GET /metrics (Prometheus)
//   POST /tokenize {"content", "add_special"} -> {"tokens"}, POST /detokenize {"tokens"} -> {"content"} (llama.cpp's)
// Every error is OpenAI's JSON error shape. Bodies over max_body_bytes get 413; a request running past
// request_timeout_s ends with 504 (or, streaming, an error event); a streaming client that goes away (or stops
// reading for the write timeout) cancels its requests and frees their slots.
// With Replicas (world.dp > 1), each completion goes to the least-loaded replica: replica 0 is this process's
// engine, the others are proxied over HTTP to their leaders, which run this same server without replicas.
#pragma once

#include <memory>
#include <string>

#include "core/serve/openai_api.hpp"
#include "core/serve/replicas.hpp"
#include "core/serve/request_book.hpp"
#include "core/serve/serve_metrics.hpp"

namespace hpcinfer::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                     // 0: any free port
  double request_timeout_s = 600;
  size_t max_body_bytes = 1 << 20;     // larger bodies: 413
  int connection_threads = 16;         // concurrent connections served (each streaming client holds one)
  double write_timeout_s = 10;         // a client that does not read for this long is dropped
};

class OpenAiServer {
 public:
  OpenAiServer(ServerOptions opt, const ApiContext& ctx, RequestBook& book, ServeMetrics& metrics,
               Replicas* replicas = nullptr);
  ~OpenAiServer();
  // Binds the listening socket; returns the port. Throws std::runtime_error naming host:port.
  int bind();
  void start();  // serves on its own thread
  void stop();   // stops accepting, waits for the handlers
  void set_ready(bool ready);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hpcinfer::serve
