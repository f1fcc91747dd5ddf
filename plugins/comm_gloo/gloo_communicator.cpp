#include "gloo_communicator.hpp"

#include <gloo/rendezvous/prefix_store.h>
#include <gloo/transport/tcp/device.h>
#include <gloo/transport/unbound_buffer.h>

#include <netdb.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <stdexcept>

#include "store_adapter.hpp"

namespace hpcinfer::gloo_comm {

namespace {
// gloo resolves the host name itself and crashes (SIGSEGV in CreateDevice, gloo 0.5) when it does not resolve, e.g.
// in a container without /etc/hosts: check first and say what to do.
std::string resolvable_host_name(const std::string& who) {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) throw std::runtime_error("gloo: " + who + ": gethostname failed");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(name, nullptr, &hints, &res);
  if (rc != 0)
    throw std::runtime_error("gloo: " + who + ": this host's name '" + name + "' does not resolve (" + gai_strerror(rc) +
                             "); set world.interface (e.g. eth0) or add the name to /etc/hosts");
  freeaddrinfo(res);
  return name;
}
}  // namespace
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

// "send to rank 1 timed out after ..." / "recv from rank 1 failed, peer connection lost: ...".
std::string describe(const std::string& dir_peer, std::chrono::milliseconds timeout, const std::exception& e) {
  std::string m = e.what();
  if (is_timeout(m))
    return dir_peer + " timed out after " + std::to_string(timeout.count()) + " ms (is it alive and in the same op?)";
  return dir_peer + " failed, peer connection lost: " + m;
}

}  // namespace

// Waits for every buffered send (each bounded by its own deadline), then tears the context down.
GlooCommunicator::~GlooCommunicator() {
  if (completer_.joinable()) {
    {
      std::lock_guard<std::mutex> lk(q_mu_);
      stop_ = true;
    }
    q_cv_.notify_all();
    completer_.join();
  }
  context_.reset();
}

std::string GlooCommunicator::group_suffix() const { return group_.empty() ? "" : " of group " + group_; }

// The peer's host comes from the store (each rank put its name there at init), read only when an error needs it:
// no cost on the way in, and a store that is gone (rank 0 died) just leaves the host out.
std::string GlooCommunicator::peer_name(int peer) const {
  std::string host;
  if (store_) {
    try {
      const std::vector<uint8_t> v =
          store_->get(key_prefix_ + "/host/" + std::to_string(peer), std::chrono::milliseconds(500));
      host.assign(v.begin(), v.end());
    } catch (const std::exception&) {
    }
  }
  return "rank " + std::to_string(peer) + (group_.empty() ? "" : " of group " + group_) +
         (host.empty() ? "" : " (host " + host + ")");
}

void GlooCommunicator::init(const CommInit& init) {
  if (context_) throw std::runtime_error("gloo: init called twice on rank " + std::to_string(rank_));
  group_ = init.group;
  who_ = "rank " + std::to_string(init.rank) +
         (group_.empty() ? "" : " of group " + group_ + " (world rank " + std::to_string(init.world_rank) + ")");
  if (init.size < 1 || init.rank < 0 || init.rank >= init.size)
    throw std::invalid_argument("gloo: " + who_ + " is not in a " + (group_.empty() ? "world" : "group") +
                                " of size " + std::to_string(init.size));
  if (!init.store) throw std::invalid_argument("gloo: CommInit.store is null (" + who_ + ")");
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
  else attr.hostname = init.hostname.empty() ? resolvable_host_name(who_) : init.hostname;
  std::shared_ptr<::gloo::transport::Device> device;
  try {
    device = ::gloo::transport::tcp::CreateDevice(attr);
  } catch (const std::exception& e) {
    throw std::runtime_error("gloo: " + who_ + " cannot open a TCP device on " +
                             (attr.iface.empty() ? "host '" + attr.hostname + "'" : "interface '" + attr.iface + "'") +
                             ": " + e.what());
  }
  StoreAdapter adapter(*init.store, timeout_);
  // A group is its own full mesh: its keys carry the group name, so the world's and each group's never mix.
  const std::string key_prefix =
      (init.prefix.empty() ? "hpcinfer" : init.prefix) + "/gloo" + (group_.empty() ? "" : "/group/" + group_);
  ::gloo::rendezvous::PrefixStore store(key_prefix, adapter);
  auto context = std::make_shared<::gloo::rendezvous::Context>(rank_, size_);
  context->setTimeout(timeout_);
  try {
    context->connectFullMesh(store, device);
  } catch (const std::exception& e) {
    throw std::runtime_error("gloo: " + who_ + " (size " + std::to_string(size_) +
                             ") could not connect to the other ranks within " + std::to_string(timeout_.count()) +
                             " ms (prefix '" + init.prefix + "'): " + e.what());
  }
  context_ = std::move(context);
  store_ = init.store;
  key_prefix_ = key_prefix;
  try {
    char name[256] = {};
    if (gethostname(name, sizeof(name) - 1) == 0) {
      const std::string n(name);
      store_->set(key_prefix_ + "/host/" + std::to_string(rank_), {n.begin(), n.end()});
    }
  } catch (const std::exception&) {  // only for messages
  }
  completer_ = std::thread([this] { completion_loop(); });
  setup_shared_memory(init, key_prefix);
  stats_.seconds += std::chrono::duration<double>(Clock::now() - start).count();
}

namespace {
// Processes that print the same string share /dev/shm and can wait on each other's futexes: one machine (boot id),
// one network namespace (two "hosts" in network namespaces on one machine stay apart), one mount, IPC and PID
// namespace (a peer's pid is checked to tell a dead rank from a slow one).
std::string host_identity() {
  std::string id;
  if (FILE* f = std::fopen("/proc/sys/kernel/random/boot_id", "r")) {
    char buf[64] = {};
    if (std::fgets(buf, sizeof buf, f)) id = buf;
    std::fclose(f);
  }
  if (id.empty()) return "";
  for (const char* ns : {"/proc/self/ns/net", "/proc/self/ns/mnt", "/proc/self/ns/ipc", "/proc/self/ns/pid"}) {
    char link[128] = {};
    if (readlink(ns, link, sizeof link - 1) <= 0) return "";
    id += std::string("|") + link;
  }
  return id;
}
}  // namespace

void GlooCommunicator::setup_shared_memory(const CommInit& init, const std::string& key_prefix) {
  const char* env = std::getenv("HPCINFER_GLOO_SHM");
  if (size_ < 2 || (env && std::string(env) == "0")) return;
  auto key = [&](const std::string& k) { return key_prefix + "/shm/" + k; };
  auto put = [&](const std::string& k, const std::string& v) { init.store->set(key(k), {v.begin(), v.end()}); };
  auto get = [&](const std::string& k) {
    const std::vector<uint8_t> v = init.store->get(key(k), timeout_);
    return std::string(v.begin(), v.end());
  };
  // Every rank reads every rank's identity, so all reach the same decision.
  const std::string me = host_identity();
  put("id/" + std::to_string(rank_), me);
  bool same = !me.empty();
  for (int q = 0; q < size_; ++q) same = get("id/" + std::to_string(q)) == me && same;
  if (!same) return;
  std::unique_ptr<ShmTransport> shm;
  std::string why;
  constexpr size_t kSlotBytes = size_t(4) << 20;  // per rank; larger messages go through in pieces
  // Point-to-point rings of 2 MiB per ordered pair (messages up to 1 MiB) for a world of up to 8 ranks (112 MiB of
  // /dev/shm at 8). Groups (tp.stage<k>) carry only collectives: no rings, their rare sends stay on TCP.
  const size_t ring_bytes = group_.empty() && size_ <= 8 ? size_t(2) << 20 : 0;
  try {
    if (rank_ == 0) {
      const std::string name = "/hpcinfer-gloo-" + std::to_string(getpid()) + "-" +
                               std::to_string(std::hash<std::string>{}(key_prefix) % 1000000007u);
      try {
        shm = std::make_unique<ShmTransport>(0, size_, name, kSlotBytes, ring_bytes);
        put("name", name);
      } catch (...) {
        put("name", "");
        throw;
      }
    } else if (const std::string name = get("name"); !name.empty()) {
      shm = std::make_unique<ShmTransport>(rank_, size_, name, kSlotBytes, ring_bytes);
    } else {
      why = "rank 0 could not make the segment";
    }
  } catch (const std::exception& e) {
    why = e.what();
  }
  put("ok/" + std::to_string(rank_), shm ? "1" : "0");
  bool all = true;
  for (int q = 0; q < size_; ++q) all = get("ok/" + std::to_string(q)) == "1" && all;
  barrier();  // every rank has mapped the segment (or given up) before its name goes
  if (shm && rank_ == 0) shm->unlink_name();
  if (all) {
    shm_ = std::move(shm);
  } else if (!why.empty()) {
    std::fprintf(stderr, "gloo: %s: collectives stay on TCP (shared memory: %s)\n", who_.c_str(), why.c_str());
  }
}

void GlooCommunicator::check_ready(const char* op) {
  if (!context_) throw std::runtime_error(std::string("gloo: ") + op + " before init");
  if (!broken_.empty())
    throw std::runtime_error(std::string("gloo: ") + op + " on " + who_ +
                             ": communicator unusable after an earlier error: " + broken_);
  throw_send_error(op);
}

void GlooCommunicator::throw_send_error(const char* op) {
  std::string err;
  {
    std::lock_guard<std::mutex> lk(q_mu_);
    err = send_error_;
  }
  if (err.empty()) return;
  broken_ = "an earlier buffered " + err;
  throw std::runtime_error(std::string("gloo: ") + op + " on " + who_ + ": " + broken_);
}

void GlooCommunicator::check_peer(const char* op, int peer) const {
  if (peer < 0 || peer >= size_ || peer == rank_)
    throw std::invalid_argument(std::string("gloo: ") + op + " on " + who_ + ": peer rank " + std::to_string(peer) +
                                " is not another rank of a " + (group_.empty() ? "world" : "group") + " of size " +
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
  std::string msg = std::string("gloo: ") + op.name + " on " + who_ + ": " + what;
  broken_ = msg;
  end(op);
  throw std::runtime_error(msg);
}

void GlooCommunicator::exchange(const Op& op, uint64_t slot, const void* send_buf, size_t send_bytes, int dst,
                                void* recv_buf, size_t recv_bytes, int src) {
  std::unique_ptr<::gloo::transport::UnboundBuffer> rx, tx;
  if (src >= 0 && recv_bytes > 0) {
    rx = context_->createUnboundBuffer(recv_buf, recv_bytes);
    try {
      std::lock_guard<std::mutex> g(post_mu_);
      rx->recv(src, slot);
    } catch (const std::exception& e) {
      fail(op, describe("recv from " + peer_name(src), timeout_, e));
    }
  }
  if (dst >= 0 && send_bytes > 0) {
    tx = context_->createUnboundBuffer(const_cast<void*>(send_buf), send_bytes);
    try {
      std::lock_guard<std::mutex> g(post_mu_);
      tx->send(dst, slot);
    } catch (const std::exception& e) {
      fail(op, describe("send to " + peer_name(dst), timeout_, e));
    }
  }
  if (rx) {
    try {
      if (!rx->waitRecv(left_ms(op.deadline))) fail(op, "recv from " + peer_name(src) + " was aborted");
    } catch (const std::runtime_error& e) {
      if (broken_.empty()) fail(op, describe("recv from " + peer_name(src), timeout_, e));
      throw;
    }
    stats_.bytes_received += recv_bytes;
  }
  if (tx) {
    try {
      if (!tx->waitSend(left_ms(op.deadline))) fail(op, "send to " + peer_name(dst) + " was aborted");
    } catch (const std::runtime_error& e) {
      if (broken_.empty()) fail(op, describe("send to " + peer_name(dst), timeout_, e));
      throw;
    }
    stats_.bytes_sent += send_bytes;
  }
}

// Buffered: copy, post (non-blocking), queue the copy for the completion thread. Blocks only while more than
// kMaxPendingBytes are in flight, up to the timeout.
void GlooCommunicator::send(const void* buf, size_t bytes, int dst, uint32_t tag) {
  Op op = begin("send");
  check_peer("send", dst);
  if (bytes == 0) return end(op);
  const bool rings = shm_ && shm_->max_message() > 0;
  if (rings && bytes <= shm_->max_message()) {  // same host: into the ring to dst, no I/O thread
    try {
      shm_->post(dst, tag, buf, bytes, false, op.deadline, group_suffix());
    } catch (const std::runtime_error& e) {
      fail(op, e.what());
    }
    stats_.bytes_sent += bytes;
    return end(op);
  }
  {
    std::unique_lock<std::mutex> lk(q_mu_);
    bool room = q_cv_.wait_until(lk, op.deadline, [&] {
      return pending_bytes_ + bytes <= kMaxPendingBytes || (pending_.empty() && !busy_) || !send_error_.empty();
    });
    if (!room) {
      lk.unlock();
      fail(op, "send to " + peer_name(dst) + ": " + std::to_string(pending_bytes_) +
                   " bytes of earlier sends still not received after " + std::to_string(timeout_.count()) + " ms");
    }
    pending_bytes_ += bytes;  // reserved now, released by the completion thread (or below on a failed post)
  }
  throw_send_error("send");
  PendingSend p;
  const auto* b = static_cast<const uint8_t*>(buf);
  p.data.assign(b, b + bytes);
  p.dst = dst;
  p.deadline = op.deadline;
  p.tx = context_->createUnboundBuffer(p.data.data(), bytes);
  try {
    std::lock_guard<std::mutex> g(post_mu_);
    p.tx->send(dst, kSlotP2P | tag);
  } catch (const std::exception& e) {
    {
      std::lock_guard<std::mutex> lk(q_mu_);
      pending_bytes_ -= bytes;
    }
    fail(op, describe("send to " + peer_name(dst), timeout_, e));
  }
  {
    std::lock_guard<std::mutex> lk(q_mu_);
    pending_.push_back(std::move(p));  // the vector's heap block (what gloo reads) does not move
  }
  q_cv_.notify_all();
  if (rings) {  // too large for the ring: it goes over TCP, the ring keeps its place in the order
    try {
      shm_->post(dst, tag, nullptr, bytes, true, op.deadline, group_suffix());
    } catch (const std::runtime_error& e) {
      fail(op, e.what());
    }
  }
  stats_.bytes_sent += bytes;
  end(op);
}

// Completion thread: waits for the posted sends oldest first; the first failure is kept for the next call.
void GlooCommunicator::completion_loop() {
  for (;;) {
    PendingSend item;
    {
      std::unique_lock<std::mutex> lk(q_mu_);
      q_cv_.wait(lk, [&] { return stop_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping and drained
      item = std::move(pending_.front());
      pending_.pop_front();
      busy_ = true;
    }
    std::string err;
    try {
      if (!item.tx->waitSend(left_ms(item.deadline))) err = "send to " + peer_name(item.dst) + " was aborted";
    } catch (const std::exception& e) {
      err = describe("send to " + peer_name(item.dst), timeout_, e);
    }
    const size_t bytes = item.data.size();
    item.tx.reset();
    {
      std::lock_guard<std::mutex> lk(q_mu_);
      if (!err.empty() && send_error_.empty()) send_error_ = err;
      pending_bytes_ -= bytes;
      busy_ = false;
    }
    q_cv_.notify_all();
  }
}

void GlooCommunicator::wait_sends(const Op& op) {
  {
    std::unique_lock<std::mutex> lk(q_mu_);
    q_cv_.wait(lk, [&] { return pending_.empty() && !busy_; });  // each send is bounded by its own deadline
  }
  throw_send_error(op.name);
}

void GlooCommunicator::recv(void* buf, size_t bytes, int src, uint32_t tag) {
  Op op = begin("recv");
  check_peer("recv", src);
  if (shm_ && shm_->max_message() > 0 && bytes > 0) {
    bool in_ring = false;
    try {
      in_ring = shm_->take(src, tag, buf, bytes, op.deadline, group_suffix());
    } catch (const std::runtime_error& e) {
      fail(op, e.what());
    }
    if (in_ring) {
      stats_.bytes_received += bytes;
      return end(op);
    }  // a marker: this message comes over TCP
  }
  exchange(op, kSlotP2P | tag, nullptr, 0, -1, buf, bytes, src);
  end(op);
}

// Gather-to-0 then release: rank 0 names exactly which rank did not arrive.
void GlooCommunicator::barrier() {
  Op op = begin("barrier");
  wait_sends(op);  // the contract: barrier() reports every buffered send
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
