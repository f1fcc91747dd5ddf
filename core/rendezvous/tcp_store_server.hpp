// The server half of TcpStore (internal): a key -> bytes map plus an accept thread and one thread per client.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hpcinfer {

// Wire op codes and reply status shared with the client (see kv_store.hpp for the frame layout).
enum : uint8_t { kOpSet = 1, kOpGet = 2 };
enum : uint8_t { kReplyOk = 0, kReplyAbsent = 1 };
inline constexpr uint32_t kMaxKeyBytes = 1u << 16;
inline constexpr uint64_t kMaxValueBytes = 1ull << 28;  // 256 MiB; read as it arrives, never allocated up front
inline constexpr int kMaxClients = 1024;                // connections at once; more are closed at accept
// Admission (before any request): the server sends kStoreMagic and a 32-byte nonce, the client answers
// store_proof(secret, nonce) within kAdmitSeconds, the server replies one byte: kReplyOk or kReplyRefused.
inline constexpr char kStoreMagic[8] = {'H', 'P', 'C', 'S', 'T', 'O', 'R', '1'};
inline constexpr uint8_t kReplyRefused = 2;
inline constexpr int kAdmitSeconds = 5;

class TcpStoreServer {
 public:
  // Listens where net::listen_on says (host / iface; port 0 = any free port) and admits clients that prove `secret`.
  // Throws std::runtime_error naming the host and port.
  TcpStoreServer(const std::string& host, const std::string& iface, int port, std::string secret);
  ~TcpStoreServer();  // stops accepting, closes every client, joins all threads
  int port() const { return port_; }

  void set(const std::string& key, std::vector<uint8_t> value);
  bool get(const std::string& key, std::vector<uint8_t>* out);

 private:
  void accept_loop();
  void serve(int fd);

  bool admit(int fd);

  int listen_fd_ = -1;
  int port_ = 0;
  std::string secret_;
  std::atomic<int> clients_open_{0};
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex threads_mu_;
  // One thread per connection; finished ones are joined by the accept loop (reap_finished): a client that connects
  // and leaves over and over must not pile up thread stacks (fuzz_store found the exhaustion after ~30k connections).
  struct Client {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Client> clients_;
  void reap_finished();
  std::mutex map_mu_;
  std::map<std::string, std::vector<uint8_t>> map_;
};

}  // namespace hpcinfer
