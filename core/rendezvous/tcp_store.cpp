// TcpStore client side and make_store(). The server half lives in tcp_store_server.cpp.
#include <unistd.h>

#include <array>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "core/rendezvous/kv_store.hpp"
#include "core/rendezvous/net_io.hpp"
#include "core/rendezvous/store_secret.hpp"
#include "core/rendezvous/tcp_store_server.hpp"

namespace hpcinfer {

namespace {

// The client's half of the admission: the server's nonce, our proof, its verdict.
void prove_secret(int fd, const std::string& secret, const std::string& endpoint, net::Clock::time_point deadline) {
  uint8_t hello[sizeof kStoreMagic + 32];
  net::IoResult r = net::read_all(fd, hello, sizeof hello, deadline);
  if (r != net::IoResult::ok)
    throw std::runtime_error("tcp store " + endpoint + ": no greeting from the server (" + net::io_result_name(r) + ")");
  if (std::memcmp(hello, kStoreMagic, sizeof kStoreMagic) != 0)
    throw std::runtime_error("tcp store " + endpoint + ": the server is not an hpcinfer store of this version");
  const std::array<uint8_t, 32> proof = store_proof(secret, hello + sizeof kStoreMagic, 32);
  uint8_t status = kReplyRefused;
  if ((r = net::write_all(fd, proof.data(), proof.size(), deadline)) != net::IoResult::ok ||
      (r = net::read_all(fd, &status, 1, deadline)) != net::IoResult::ok)
    throw std::runtime_error("tcp store " + endpoint + ": admission failed (" + net::io_result_name(r) + ")");
  if (status != kReplyOk)
    throw std::runtime_error("tcp store " + endpoint + " refused this rank: its secret differs from rank 0's (every "
                             "rank needs the same HPCINFER_STORE_SECRET, HPCINFER_STORE_SECRET_FILE or "
                             "~/.hpcinfer/store_secret)");
}

}  // namespace

TcpStore::TcpStore(std::string host, int port, bool is_server, std::chrono::milliseconds timeout, std::string secret,
                   const std::string& iface)
    : host_(std::move(host)), port_(port), timeout_(timeout) {
  if (port < 0 || port > 65535) throw std::invalid_argument("tcp store: port " + std::to_string(port) + " out of range");
  if (secret.empty()) secret = store_secret();
  if (is_server) {
    server_ = std::make_unique<TcpStoreServer>(host_, iface, port, secret);
    port_ = server_->port();
    return;
  }
  // Rank 0 may start later than us: retry until the timeout.
  const auto deadline = net::Clock::now() + timeout;
  std::string why = "no attempt made";
  auto pause = std::chrono::milliseconds(10);
  for (;;) {
    fd_ = net::connect_once(host_, port_, deadline, &why);
    if (fd_ >= 0) {
      try {
        prove_secret(fd_, secret, endpoint(), deadline);
      } catch (...) {
        ::close(fd_);
        fd_ = -1;
        throw;
      }
      return;
    }
    if (net::Clock::now() + pause >= deadline) break;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(200));
  }
  throw std::runtime_error("tcp store: cannot connect to " + endpoint() + " within " + std::to_string(timeout.count()) +
                           " ms (" + why + "); is rank 0 running and is that port reachable from this host?");
}

TcpStore::~TcpStore() {
  if (fd_ >= 0) ::close(fd_);
}

bool TcpStore::round_trip(uint8_t op, const std::string& key, const std::vector<uint8_t>& in,
                          std::vector<uint8_t>* out) {
  if (key.size() > kMaxKeyBytes) throw std::invalid_argument("tcp store: key too long: '" + key.substr(0, 64) + "...'");
  std::lock_guard<std::mutex> lock(mu_);
  const auto deadline = net::Clock::now() + timeout_;
  auto fail = [&](const char* what, net::IoResult r) {
    return std::runtime_error("tcp store " + endpoint() + ": " + what + " for key '" + key +
                              "' failed: " + net::io_result_name(r) + " (has rank 0 exited?)");
  };
  uint32_t key_len = uint32_t(key.size());
  uint64_t val_len = in.size();
  net::IoResult r;
  if ((r = net::write_all(fd_, &op, 1, deadline)) != net::IoResult::ok ||
      (r = net::write_all(fd_, &key_len, 4, deadline)) != net::IoResult::ok ||
      (r = net::write_all(fd_, key.data(), key.size(), deadline)) != net::IoResult::ok ||
      (r = net::write_all(fd_, &val_len, 8, deadline)) != net::IoResult::ok ||
      (r = net::write_all(fd_, in.data(), in.size(), deadline)) != net::IoResult::ok)
    throw fail("request", r);
  uint8_t status = 0;
  uint64_t reply_len = 0;
  if ((r = net::read_all(fd_, &status, 1, deadline)) != net::IoResult::ok ||
      (r = net::read_all(fd_, &reply_len, 8, deadline)) != net::IoResult::ok)
    throw fail("reply", r);
  if (reply_len > kMaxValueBytes) throw fail("reply (bad length)", net::IoResult::error);
  std::vector<uint8_t> reply(reply_len);
  if ((r = net::read_all(fd_, reply.data(), reply.size(), deadline)) != net::IoResult::ok) throw fail("reply", r);
  if (out) *out = std::move(reply);
  return status == kReplyOk;
}

void TcpStore::set(const std::string& key, const std::vector<uint8_t>& value) {
  if (server_) return server_->set(key, value);
  round_trip(kOpSet, key, value, nullptr);
}

bool TcpStore::try_get(const std::string& key, std::vector<uint8_t>* out) {
  if (server_) return server_->get(key, out);
  return round_trip(kOpGet, key, {}, out);
}

bool TcpStore::check(const std::string& key) { return try_get(key, nullptr); }

// Polls (1 ms growing to 20 ms) so that several threads can share one store without blocking each other.
std::vector<uint8_t> TcpStore::get(const std::string& key, std::chrono::milliseconds timeout) {
  const auto deadline = net::Clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  std::vector<uint8_t> out;
  for (;;) {
    if (try_get(key, &out)) return out;
    if (net::Clock::now() >= deadline)
      throw std::runtime_error("tcp store " + endpoint() + ": key '" + key + "' not set after " +
                               std::to_string(timeout.count()) + " ms");
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
}

std::unique_ptr<KeyValueStore> make_store(const std::string& spec, int rank, int size,
                                          std::chrono::milliseconds timeout, const std::string& iface) {
  if (size < 1 || rank < 0 || rank >= size)
    throw std::invalid_argument("store '" + spec + "': rank " + std::to_string(rank) + " is not in a world of size " +
                                std::to_string(size));
  const std::string file_scheme = "file://", tcp_scheme = "tcp://";
  if (spec.rfind(file_scheme, 0) == 0) {
    std::string dir = spec.substr(file_scheme.size());
    if (dir.empty()) throw std::invalid_argument("store '" + spec + "': empty directory (use file:///shared/dir)");
    try {
      return std::make_unique<FileStore>(dir);
    } catch (const std::exception& e) {
      throw std::runtime_error("store '" + spec + "': " + e.what());
    }
  }
  if (spec.rfind(tcp_scheme, 0) == 0) {
    std::string rest = spec.substr(tcp_scheme.size());
    auto colon = rest.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size())
      throw std::invalid_argument("store '" + spec + "': expected tcp://host:port");
    std::string host = rest.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);  // [::1]
    int port = -1;
    try {
      size_t used = 0;
      port = std::stoi(rest.substr(colon + 1), &used);
      if (used != rest.size() - colon - 1) port = -1;
    } catch (const std::exception&) {
    }
    if (port < 1 || port > 65535) throw std::invalid_argument("store '" + spec + "': port must be 1..65535");
    try {
      return std::make_unique<TcpStore>(host, port, rank == 0, timeout, "", iface);
    } catch (const std::exception& e) {
      throw std::runtime_error("store '" + spec + "' (rank " + std::to_string(rank) + "): " + e.what());
    }
  }
  throw std::invalid_argument("store '" + spec + "': unknown scheme (use file:///shared/dir or tcp://host:port)");
}

}  // namespace hpcinfer
