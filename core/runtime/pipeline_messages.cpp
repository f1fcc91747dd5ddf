// The pipeline engine's messages between ranks (pipeline_engine.hpp): batches forward (first stage -> last, and
// leader -> the first stage's other tp ranks), sampled tokens and token events back (last stage -> first).
// Messages between two ranks keep FIFO order per tag, so a header saying what follows is all the framing needed.
#include <chrono>
#include <stdexcept>

#include "core/runtime/pipeline_engine.hpp"

namespace hpcinfer {
namespace {
constexpr uint32_t kTagForward = 1;   // first -> last (and leader -> followers): batches and activations
constexpr uint32_t kTagBackward = 2;  // last -> first: sampled tokens
// header: kind, group, n tokens, m sampled rows, cancelled count, admitted-requests bytes, tokens included
constexpr int kHeader = 7;
}  // namespace

void PipelineEngine::send_batch(const Batch& b, int dst, bool with_tokens) {
  const double t = now();
  const int n = b.tokens.size(), m = int(b.sample_rows.size()), nc = int(b.cancelled.size());
  const std::string admitted = b.admitted.empty() ? std::string() : requests_to_wire(b.admitted);
  int header[kHeader] = {int(Msg::data), b.group, n, m, nc, int(admitted.size()), with_tokens ? 1 : 0};
  std::vector<int> meta;  // [tokens[n]], slot[n], pos[n], sample_rows[m], sample_requests[m], cancelled[nc]
  meta.reserve(size_t(3 * n + 2 * m + nc));
  if (with_tokens) meta.insert(meta.end(), b.tokens.tokens.begin(), b.tokens.tokens.end());
  meta.insert(meta.end(), b.tokens.slot.begin(), b.tokens.slot.end());
  meta.insert(meta.end(), b.tokens.pos.begin(), b.tokens.pos.end());
  meta.insert(meta.end(), b.sample_rows.begin(), b.sample_rows.end());
  meta.insert(meta.end(), b.sample_requests.begin(), b.sample_requests.end());
  meta.insert(meta.end(), b.cancelled.begin(), b.cancelled.end());
  comm_->send(header, sizeof header, dst, kTagForward);
  comm_->send(meta.data(), meta.size() * sizeof(int), dst, kTagForward);
  if (!admitted.empty()) comm_->send(admitted.data(), admitted.size(), dst, kTagForward);
  if (!with_tokens)
    comm_->send(stage_.hidden(n), size_t(n) * size_t(stage_.desc().dim) * sizeof(float), dst, kTagForward);
  const double te = now();
  stats_.send_s += te - t;
  spans_.add("send", t - t0_, te - t0_, b.group, n);
}

PipelineEngine::Msg PipelineEngine::recv_batch(Batch& b, int src, bool with_tokens) {
  const double t = now();
  int header[kHeader];
  comm_->recv(header, sizeof header, src, kTagForward);
  const Msg kind = Msg(header[0]);
  if (kind != Msg::data) {
    const double te = now();
    stats_.recv_wait_s += te - t;
    spans_.add("recv_wait", t - t0_, te - t0_);
    if (kind != Msg::shutdown && kind != Msg::keepalive)
      throw std::runtime_error("pipeline: unknown message kind " + std::to_string(header[0]) + " from rank " +
                               std::to_string(src));
    return kind;
  }
  const int n = header[2], m = header[3], nc = header[4], admitted_bytes = header[5];
  if (n < 1 || m < 0 || nc < 0 || admitted_bytes < 0 || header[6] != (with_tokens ? 1 : 0))
    throw std::runtime_error("pipeline: malformed batch header from rank " + std::to_string(src));
  const size_t nt = with_tokens ? size_t(n) : 0;
  std::vector<int> meta(nt + size_t(2 * n + 2 * m + nc));
  comm_->recv(meta.data(), meta.size() * sizeof(int), src, kTagForward);
  std::string admitted(size_t(admitted_bytes), '\0');
  if (admitted_bytes > 0) comm_->recv(admitted.data(), admitted.size(), src, kTagForward);
  if (!with_tokens)
    comm_->recv(stage_.hidden(n), size_t(n) * size_t(stage_.desc().dim) * sizeof(float), src, kTagForward);
  b.group = header[1];
  auto at = meta.begin();
  auto take = [&](std::vector<int>& v, size_t count) {
    v.assign(at, at + std::ptrdiff_t(count));
    at += std::ptrdiff_t(count);
  };
  if (with_tokens) take(b.tokens.tokens, size_t(n));
  else b.tokens.tokens.clear();
  take(b.tokens.slot, size_t(n));
  take(b.tokens.pos, size_t(n));
  take(b.sample_rows, size_t(m));
  take(b.sample_requests, size_t(m));
  take(b.cancelled, size_t(nc));
  b.admitted = admitted.empty() ? std::vector<Request>{} : requests_from_wire(admitted);
  const double te = now();
  stats_.recv_wait_s += te - t;
  spans_.add("recv_wait", t - t0_, te - t0_, b.group, n);
  return Msg::data;
}

void PipelineEngine::send_control(Msg kind, int dst) {
  int header[kHeader] = {int(kind), 0, 0, 0, 0, 0, 0};
  comm_->send(header, sizeof header, dst, kTagForward);
}

void PipelineEngine::send_results(const std::vector<Sampled>& r, const std::vector<TokenEvent>& events, int group,
                                  int dst) {
  const double t = now();
  const std::string ev = events.empty() ? std::string() : events_to_wire(events);
  std::vector<int> msg{group, int(r.size()), int(ev.size())};
  for (const Sampled& s : r) msg.insert(msg.end(), {s.slot, s.token, s.finished});
  int count = int(msg.size());
  comm_->send(&count, sizeof count, dst, kTagBackward);
  comm_->send(msg.data(), msg.size() * sizeof(int), dst, kTagBackward);
  if (!ev.empty()) comm_->send(ev.data(), ev.size(), dst, kTagBackward);
  const double te = now();
  stats_.send_s += te - t;
  spans_.add("send", t - t0_, te - t0_, group, int(r.size()));
}

std::vector<PipelineEngine::Sampled> PipelineEngine::recv_results(int group, int src, std::vector<TokenEvent>* events) {
  const double t = now();
  int count = 0;
  comm_->recv(&count, sizeof count, src, kTagBackward);
  if (count < 3 || count > (1 << 26))
    throw std::runtime_error("pipeline: malformed token message from rank " + std::to_string(src));
  std::vector<int> msg(static_cast<size_t>(count));
  comm_->recv(msg.data(), msg.size() * sizeof(int), src, kTagBackward);
  if (msg[0] != group || count != 3 + 3 * msg[1] || msg[2] < 0)
    throw std::runtime_error("pipeline: malformed token message from rank " + std::to_string(src));
  std::string ev(size_t(msg[2]), '\0');
  if (!ev.empty()) comm_->recv(ev.data(), ev.size(), src, kTagBackward);
  if (events && !ev.empty()) {
    std::vector<TokenEvent> e = events_from_wire(ev);
    events->insert(events->end(), std::make_move_iterator(e.begin()), std::make_move_iterator(e.end()));
  }
  std::vector<Sampled> out;
  for (int i = 0; i < msg[1]; ++i) out.push_back({msg[size_t(3 + 3 * i)], msg[size_t(4 + 3 * i)], msg[size_t(5 + 3 * i)]});
  const double te = now();
  stats_.recv_wait_s += te - t;
  spans_.add("recv_wait", t - t0_, te - t0_, group, msg[1]);
  return out;
}

}  // namespace hpcinfer
