// Rendezvous stores: how the ranks of a job find each other before any transport exists.
//
// Both implement hpcinfer::KeyValueStore (interfaces/hpcinfer/communicator.hpp): set / blocking get / check, all
// thread-safe. Keys are arbitrary strings; values arbitrary bytes. A key is written once per job (later sets replace).
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "hpcinfer/communicator.hpp"

namespace hpcinfer {

// A directory on a filesystem every rank sees (NFS, Lustre, a local /tmp for one host). Each key is one file,
// written to a temporary name and renamed into place, so a reader never sees half a value. get() polls.
// The directory should be fresh per job (e.g. named after SLURM_JOB_ID); it is created if absent, never removed.
class FileStore : public KeyValueStore {
 public:
  explicit FileStore(std::filesystem::path dir);  // throws std::runtime_error naming the dir if it cannot be created
  void set(const std::string& key, const std::vector<uint8_t>& value) override;
  std::vector<uint8_t> get(const std::string& key, std::chrono::milliseconds timeout) override;
  bool check(const std::string& key) override;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path path_of(const std::string& key) const;
  std::filesystem::path dir_;
};

class TcpStoreServer;  // tcp_store_server.cpp: the map and the thread that serves it

// A store hosted by rank 0 at host:port: rank 0 runs a small server thread (and reads its map directly), every
// other rank connects over TCP, retrying until `timeout`. Needs no shared filesystem.
// Wire protocol (integers in host byte order: little-endian on x86-64 and arm64): first the admission of
// tcp_store_server.hpp (nonce, HMAC proof of the job's secret, status); then request = u8 op, u32 key length, key,
// u64 value length, value;
// reply = u8 status (0 ok / 1 absent), u64 value length, value. ops: 1 set, 2 get-if-present.
// Destruction on rank 0 stops the server (other ranks' later calls then fail naming host:port).
class TcpStore : public KeyValueStore {
 public:
  // port 0 on the host rank picks a free port (see port()); clients need the real one. `secret` admits the job's
  // ranks (store_secret.hpp; "" = store_secret()); the server listens on `iface`'s address when given, else on the
  // address `host` resolves to (net::listen_on).
  TcpStore(std::string host, int port, bool is_server, std::chrono::milliseconds timeout, std::string secret = "",
           const std::string& iface = "");
  ~TcpStore() override;
  TcpStore(const TcpStore&) = delete;
  TcpStore& operator=(const TcpStore&) = delete;

  void set(const std::string& key, const std::vector<uint8_t>& value) override;
  std::vector<uint8_t> get(const std::string& key, std::chrono::milliseconds timeout) override;
  bool check(const std::string& key) override;
  int port() const { return port_; }
  std::string endpoint() const { return host_ + ":" + std::to_string(port_); }

 private:
  // One request/reply round trip (client side); returns false when the key is absent.
  bool round_trip(uint8_t op, const std::string& key, const std::vector<uint8_t>& in, std::vector<uint8_t>* out);
  bool try_get(const std::string& key, std::vector<uint8_t>* out);

  std::string host_;
  int port_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<TcpStoreServer> server_;  // rank 0 only
  int fd_ = -1;                             // other ranks: the connection to the server
  std::mutex mu_;                           // one request at a time on fd_
};

// "file:///shared/dir" -> FileStore, "tcp://host:port" -> TcpStore (rank 0 hosts, on `iface` when given: the
// configuration's world.interface). `size` is checked against rank.
// Throws std::invalid_argument naming the spec when it is malformed, std::runtime_error when the store cannot start.
std::unique_ptr<KeyValueStore> make_store(const std::string& spec, int rank, int size, std::chrono::milliseconds timeout,
                                          const std::string& iface = "");

}  // namespace hpcinfer
