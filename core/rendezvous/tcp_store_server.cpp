#include "core/rendezvous/tcp_store_server.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

#include "core/rendezvous/net_io.hpp"

namespace hpcinfer {

TcpStoreServer::TcpStoreServer(int port) {
  std::string why;
  listen_fd_ = net::listen_any(port, &port_, &why);
  if (listen_fd_ < 0) throw std::runtime_error("tcp store: cannot listen on port " + std::to_string(port) + ": " + why);
  acceptor_ = std::thread([this] { accept_loop(); });
}

TcpStoreServer::~TcpStoreServer() {
  stop_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  std::lock_guard<std::mutex> lock(threads_mu_);
  for (auto& t : clients_) t.join();  // each notices stop_ within 100 ms and closes its socket
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
    std::lock_guard<std::mutex> lock(threads_mu_);
    clients_.emplace_back([this, fd] { serve(fd); });
  }
}

// One client: requests until it disconnects or the server stops. A malformed frame drops the connection.
void TcpStoreServer::serve(int fd) {
  const auto forever = net::Clock::time_point::max();
  const auto io_deadline = [] { return net::Clock::now() + std::chrono::seconds(60); };
  for (;;) {
    uint8_t op = 0;
    if (net::read_all(fd, &op, 1, forever, &stop_) != net::IoResult::ok) break;
    uint32_t key_len = 0;
    if (net::read_all(fd, &key_len, 4, io_deadline(), &stop_) != net::IoResult::ok || key_len > kMaxKeyBytes) break;
    std::string key(key_len, '\0');
    if (net::read_all(fd, key.data(), key_len, io_deadline(), &stop_) != net::IoResult::ok) break;
    uint64_t val_len = 0;
    if (net::read_all(fd, &val_len, 8, io_deadline(), &stop_) != net::IoResult::ok || val_len > kMaxValueBytes) break;
    std::vector<uint8_t> value(val_len);
    if (net::read_all(fd, value.data(), val_len, io_deadline(), &stop_) != net::IoResult::ok) break;

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
  ::close(fd);
}

}  // namespace hpcinfer
