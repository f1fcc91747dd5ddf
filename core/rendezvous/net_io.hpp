// Blocking socket helpers with a deadline, shared by the TCP store's client and server (internal to rendezvous).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace hpcinfer::net {

using Clock = std::chrono::steady_clock;

enum class IoResult { ok, closed, timeout, error };

// Writes / reads exactly `n` bytes unless the peer closes, the deadline passes or an error occurs.
// `stop` (optional) is checked between waits so a server thread can give up promptly.
IoResult write_all(int fd, const void* buf, size_t n, Clock::time_point deadline);
IoResult read_all(int fd, void* buf, size_t n, Clock::time_point deadline, const std::atomic<bool>* stop = nullptr);

// One connect attempt to host:port with a deadline; returns the fd or -1 with `why` filled.
int connect_once(const std::string& host, int port, Clock::time_point deadline, std::string* why);
// Listens on all interfaces (IPv6 dual-stack when available) at `port` (0 = any); returns the fd and the real port.
int listen_any(int port, int* bound_port, std::string* why);
// Listens only where the job's ranks reach this host: the address of network interface `iface` when given (e.g.
// world.interface), else the address `host` resolves to; all interfaces only when host is 0.0.0.0, ::, * or empty,
// or when host resolves to a loopback address while not being a loopback name itself (Debian's /etc/hosts maps the
// host name to 127.0.1.1, which other hosts cannot reach). `where` says what it bound, for messages.
int listen_on(const std::string& host, const std::string& iface, int port, int* bound_port, std::string* where,
              std::string* why);

const char* io_result_name(IoResult r);

}  // namespace hpcinfer::net
