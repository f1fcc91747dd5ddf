// The server half of TcpStore (internal): a key -> bytes map plus an accept thread and one thread per client.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hpcinfer {

// Wire op codes and reply status shared with the client (see kv_store.hpp for the frame layout).
enum : uint8_t { kOpSet = 1, kOpGet = 2 };
enum : uint8_t { kReplyOk = 0, kReplyAbsent = 1 };
inline constexpr uint32_t kMaxKeyBytes = 1u << 16;
inline constexpr uint64_t kMaxValueBytes = 1ull << 30;

class TcpStoreServer {
 public:
  // Listens on every interface at `port` (0 = any free port). Throws std::runtime_error naming the port.
  explicit TcpStoreServer(int port);
  ~TcpStoreServer();  // stops accepting, closes every client, joins all threads
  int port() const { return port_; }

  void set(const std::string& key, std::vector<uint8_t> value);
  bool get(const std::string& key, std::vector<uint8_t>* out);

 private:
  void accept_loop();
  void serve(int fd);

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex threads_mu_;
  std::vector<std::thread> clients_;
  std::mutex map_mu_;
  std::map<std::string, std::vector<uint8_t>> map_;
};

}  // namespace hpcinfer
