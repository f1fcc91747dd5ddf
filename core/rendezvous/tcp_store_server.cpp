#include "core/rendezvous/tcp_store_server.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "core/rendezvous/net_io.hpp"
#include "core/rendezvous/store_secret.hpp"

namespace hpcinfer {

TcpStoreServer::TcpStoreServer(const std::string& host, const std::string& iface, int port, std::string secret)
    : secret_(std::move(secret)) {
  std::string why, where;
  listen_fd_ = net::listen_on(host, iface, port, &port_, &where, &why);
  if (listen_fd_ < 0)
    throw std::runtime_error("tcp store: cannot listen on " + host + (iface.empty() ? "" : " (interface " + iface + ")") +
                             " port " + std::to_string(port) + ": " + why +
                             " (rank 0 must run on the host the tcp:// rendezvous names)");
  acceptor_ = std::thread([this] { accept_loop(); });
}

TcpStoreServer::~TcpStoreServer() {
  stop_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  std::lock_guard<std::mutex> lock(threads_mu_);
  for (auto& c : clients_) c.thread.join();  // each notices stop_ within 100 ms and closes its socket
  ::close(listen_fd_);
}

void TcpStoreServer::set(const std::string& key, std::vector<uint8_t> value) {
  std::lock_guard<std::mutex> lock(map_mu_);
  map_[key] = std::move(value);
}

bool TcpStoreServer::get(const std::string& key, std::vector<uint8_t>* out) {
  std::lock_guard<std::mutex> lock(map_mu_);
  auto it = map_.find(key);
  if (it == map_.end()) return false;
  if (out) *out = it->second;
  return true;
}

void TcpStoreServer::accept_loop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    int r = ::poll(&p, 1, 100);
    if (r <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    if (clients_open_ >= kMaxClients) {  // a flood of connections gets no thread each
      ::close(fd);
      continue;
    }
    ++clients_open_;
    std::lock_guard<std::mutex> lock(threads_mu_);
    reap_finished();
    auto done = std::make_shared<std::atomic<bool>>(false);
    clients_.push_back({std::thread([this, fd, done] {
                          if (admit(fd)) serve(fd);
                          ::close(fd);
                          --clients_open_;
                          *done = true;
                        }),
                        done});
  }
}

// Joins the threads of connections that have ended (called with threads_mu_ held).
void TcpStoreServer::reap_finished() {
  for (auto it = clients_.begin(); it != clients_.end();) {
    if (*it->done) {
      it->thread.join();
      it = clients_.erase(it);
    } else {
      ++it;
    }
  }
}

// The client proves it knows the job's secret within kAdmitSeconds, or the connection is dropped unanswered.
bool TcpStoreServer::admit(int fd) {
  const auto deadline = net::Clock::now() + std::chrono::seconds(kAdmitSeconds);
  uint8_t hello[sizeof kStoreMagic + 32];
  std::memcpy(hello, kStoreMagic, sizeof kStoreMagic);
  random_bytes(hello + sizeof kStoreMagic, 32);
  std::array<uint8_t, 32> proof{};
  if (net::write_all(fd, hello, sizeof hello, deadline) != net::IoResult::ok ||
      net::read_all(fd, proof.data(), proof.size(), deadline, &stop_) != net::IoResult::ok)
    return false;
  const bool ok = same_proof(proof, store_proof(secret_, hello + sizeof kStoreMagic, 32));
  const uint8_t status = ok ? kReplyOk : kReplyRefused;
  return net::write_all(fd, &status, 1, deadline) == net::IoResult::ok && ok;
}

// One admitted client: requests until it disconnects or the server stops. A malformed frame drops the connection;
// a value is read as it arrives (a declared length allocates nothing), each frame within 30 s.
void TcpStoreServer::serve(int fd) {
  const auto forever = net::Clock::time_point::max();
  const auto io_deadline = [] { return net::Clock::now() + std::chrono::seconds(30); };
  for (;;) {
    uint8_t op = 0;
    if (net::read_all(fd, &op, 1, forever, &stop_) != net::IoResult::ok) break;
    uint32_t key_len = 0;
    if (net::read_all(fd, &key_len, 4, io_deadline(), &stop_) != net::IoResult::ok || key_len > kMaxKeyBytes) break;
    std::string key(key_len, '\0');
    if (net::read_all(fd, key.data(), key_len, io_deadline(), &stop_) != net::IoResult::ok) break;
    uint64_t val_len = 0;
    if (net::read_all(fd, &val_len, 8, io_deadline(), &stop_) != net::IoResult::ok || val_len > kMaxValueBytes) break;
    std::vector<uint8_t> value;
    bool got = true;
    const auto value_deadline = io_deadline();
    for (uint64_t at = 0; at < val_len && got;) {
      const size_t chunk = size_t(std::min<uint64_t>(val_len - at, 1u << 20));
      value.resize(size_t(at) + chunk);
      got = net::read_all(fd, value.data() + at, chunk, value_deadline, &stop_) == net::IoResult::ok;
      at += chunk;
    }
    if (!got) break;

    uint8_t status = kReplyOk;
    std::vector<uint8_t> reply;
    if (op == kOpSet) {
      set(key, std::move(value));
    } else if (op == kOpGet) {
      if (!get(key, &reply)) status = kReplyAbsent;
    } else {
      break;
    }
    uint64_t reply_len = reply.size();
    if (net::write_all(fd, &status, 1, io_deadline()) != net::IoResult::ok ||
        net::write_all(fd, &reply_len, 8, io_deadline()) != net::IoResult::ok ||
        net::write_all(fd, reply.data(), reply.size(), io_deadline()) != net::IoResult::ok)
      break;
  }
}

}  // namespace hpcinfer
