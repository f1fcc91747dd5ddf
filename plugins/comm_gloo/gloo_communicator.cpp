#include "gloo_communicator.hpp"

#include <gloo/rendezvous/prefix_store.h>
#include <gloo/transport/tcp/device.h>
#include <gloo/transport/unbound_buffer.h>

#include <csignal>
#include <stdexcept>

#include "store_adapter.hpp"

namespace hpcinfer::gloo_comm {
namespace {

// Gloo slots (message matching keys per pair): p2p messages carry the user's tag, collectives a fixed id.
constexpr uint64_t kSlotP2P = 1ull << 40;
constexpr uint64_t kSlotBarrier = (2ull << 40) | 1;
constexpr uint64_t kSlotBroadcast = (2ull << 40) | 2;

std::chrono::milliseconds left_ms(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return std::max(left, std::chrono::milliseconds(1));  // gloo reads 0 as "no timeout"
}

bool is_timeout(const std::string& msg) { return msg.find("Timed out") != std::string::npos; }

}  // namespace

GlooCommunicator::~GlooCommunicator() { context_.reset(); }

void GlooCommunicator::init(const CommInit& init) {
  if (context_) throw std::runtime_error("gloo: init called twice on rank " + std::to_string(rank_));
  if (init.size < 1 || init.rank < 0 || init.rank >= init.size)
    throw std::invalid_argument("gloo: rank " + std::to_string(init.rank) + " is not in a world of size " +
                                std::to_string(init.size));
  if (!init.store) throw std::invalid_argument("gloo: CommInit.store is null (rank " + std::to_string(init.rank) + ")");
  rank_ = init.rank;
  size_ = init.size;
  timeout_ = init.timeout;
  const auto start = Clock::now();

  // Gloo writes with writev(): a peer that died would kill us with SIGPIPE instead of an error we can report.
  // Done here (not in a static initializer) and only when nobody installed a handler.
  struct sigaction old{};
  if (sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) std::signal(SIGPIPE, SIG_IGN);

  ::gloo::transport::tcp::attr attr;
  if (!init.interface_name.empty()) attr.iface = init.interface_name;
  else attr.hostname = init.hostname;  // empty: gloo resolves this host's name
  std::shared_ptr<::gloo::transport::Device> device;
  try {
    device = ::gloo::transport::tcp::CreateDevice(attr);
  } catch (const std::exception& e) {
    throw std::runtime_error("gloo: rank " + std::to_string(rank_) + " cannot open a TCP device on " +
                             (attr.iface.empty() ? "host '" + attr.hostname + "'" : "interface '" + attr.iface + "'") +
                             ": " + e.what());
  }
  StoreAdapter adapter(*init.store, timeout_);
  ::gloo::rendezvous::PrefixStore store((init.prefix.empty() ? "hpcinfer" : init.prefix) + "/gloo", adapter);
  auto context = std::make_shared<::gloo::rendezvous::Context>(rank_, size_);
  context->setTimeout(timeout_);
  try {
    context->connectFullMesh(store, device);
  } catch (const std::exception& e) {
    throw std::runtime_error("gloo: rank " + std::to_string(rank_) + " of " + std::to_string(size_) +
                             " could not connect to the other ranks within " + std::to_string(timeout_.count()) +
                             " ms (prefix '" + init.prefix + "'): " + e.what());
  }
  context_ = std::move(context);
  stats_.seconds += std::chrono::duration<double>(Clock::now() - start).count();
}

void GlooCommunicator::check_ready(const char* op) const {
  if (!context_) throw std::runtime_error(std::string("gloo: ") + op + " before init");
  if (!broken_.empty())
    throw std::runtime_error(std::string("gloo: ") + op + " on rank " + std::to_string(rank_) +
                             ": communicator unusable after an earlier error: " + broken_);
}

void GlooCommunicator::check_peer(const char* op, int peer) const {
  if (peer < 0 || peer >= size_ || peer == rank_)
    throw std::invalid_argument(std::string("gloo: ") + op + " on rank " + std::to_string(rank_) + ": peer rank " +
                                std::to_string(peer) + " is not another rank of a world of size " +
                                std::to_string(size_));
}

GlooCommunicator::Op GlooCommunicator::begin(const char* name) {
  check_ready(name);
  auto now = Clock::now();
  return Op{name, now, now + timeout_};
}

void GlooCommunicator::end(const Op& op) {
  stats_.seconds += std::chrono::duration<double>(Clock::now() - op.start).count();
  stats_.calls += 1;
}

void GlooCommunicator::fail(const Op& op, const std::string& what) {
  std::string msg = std::string("gloo: ") + op.name + " on rank " + std::to_string(rank_) + ": " + what;
  broken_ = msg;
  end(op);
  throw std::runtime_error(msg);
}

void GlooCommunicator::exchange(const Op& op, uint64_t slot, const void* send_buf, size_t send_bytes, int dst,
                                void* recv_buf, size_t recv_bytes, int src) {
  std::unique_ptr<::gloo::transport::UnboundBuffer> rx, tx;
  auto describe = [&](const char* dir, int peer, const std::exception& e) {
    std::string m = e.what();
    if (is_timeout(m))
      return std::string(dir) + " rank " + std::to_string(peer) + " timed out after " +
             std::to_string(timeout_.count()) + " ms (is rank " + std::to_string(peer) + " alive and in the same op?)";
    return std::string(dir) + " rank " + std::to_string(peer) + " failed, peer connection lost: " + m;
  };
  if (src >= 0 && recv_bytes > 0) {
    rx = context_->createUnboundBuffer(recv_buf, recv_bytes);
    try {
      rx->recv(src, slot);
    } catch (const std::exception& e) {
      fail(op, describe("recv from", src, e));
    }
  }
  if (dst >= 0 && send_bytes > 0) {
    tx = context_->createUnboundBuffer(const_cast<void*>(send_buf), send_bytes);
    try {
      tx->send(dst, slot);
    } catch (const std::exception& e) {
      fail(op, describe("send to", dst, e));
    }
  }
  if (rx) {
    try {
      if (!rx->waitRecv(left_ms(op.deadline))) fail(op, "recv from rank " + std::to_string(src) + " was aborted");
    } catch (const std::runtime_error& e) {
      if (broken_.empty()) fail(op, describe("recv from", src, e));
      throw;
    }
    stats_.bytes_received += recv_bytes;
  }
  if (tx) {
    try {
      if (!tx->waitSend(left_ms(op.deadline))) fail(op, "send to rank " + std::to_string(dst) + " was aborted");
    } catch (const std::runtime_error& e) {
      if (broken_.empty()) fail(op, describe("send to", dst, e));
      throw;
    }
    stats_.bytes_sent += send_bytes;
  }
}

void GlooCommunicator::send(const void* buf, size_t bytes, int dst, uint32_t tag) {
  Op op = begin("send");
  check_peer("send", dst);
  exchange(op, kSlotP2P | tag, buf, bytes, dst, nullptr, 0, -1);
  end(op);
}

void GlooCommunicator::recv(void* buf, size_t bytes, int src, uint32_t tag) {
  Op op = begin("recv");
  check_peer("recv", src);
  exchange(op, kSlotP2P | tag, nullptr, 0, -1, buf, bytes, src);
  end(op);
}

// Gather-to-0 then release: rank 0 names exactly which rank did not arrive.
void GlooCommunicator::barrier() {
  Op op = begin("barrier");
  uint8_t token = 1, got = 0;
  if (rank_ == 0) {
    for (int r = 1; r < size_; ++r) exchange(op, kSlotBarrier, nullptr, 0, -1, &got, 1, r);
    for (int r = 1; r < size_; ++r) exchange(op, kSlotBarrier, &token, 1, r, nullptr, 0, -1);
  } else if (size_ > 1) {
    exchange(op, kSlotBarrier, &token, 1, 0, nullptr, 0, -1);
    exchange(op, kSlotBarrier, nullptr, 0, -1, &got, 1, 0);
  }
  end(op);
}

// Root sends to every other rank (linear: tensor-parallel groups are small).
void GlooCommunicator::broadcast(void* buf, size_t bytes, int root) {
  Op op = begin("broadcast");
  if (root < 0 || root >= size_)
    throw std::invalid_argument("gloo: broadcast root " + std::to_string(root) + " is not a rank of a world of size " +
                                std::to_string(size_));
  if (rank_ == root) {
    for (int r = 0; r < size_; ++r)
      if (r != root) exchange(op, kSlotBroadcast, buf, bytes, r, nullptr, 0, -1);
  } else {
    exchange(op, kSlotBroadcast, nullptr, 0, -1, buf, bytes, root);
  }
  end(op);
}

}  // namespace hpcinfer::gloo_comm
