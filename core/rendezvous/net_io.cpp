#include "core/rendezvous/net_io.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hpcinfer::net {
namespace {

int ms_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : int(std::min<long long>(left, 100));  // wake at least every 100 ms
}

IoResult wait_fd(int fd, short events, Clock::time_point deadline, const std::atomic<bool>* stop) {
  for (;;) {
    if (stop && *stop) return IoResult::closed;
    if (Clock::now() >= deadline) return IoResult::timeout;
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, ms_left(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return IoResult::error;
    if (r > 0) return IoResult::ok;
  }
}

}  // namespace

const char* io_result_name(IoResult r) {
  switch (r) {
    case IoResult::ok: return "ok";
    case IoResult::closed: return "connection closed";
    case IoResult::timeout: return "timed out";
    case IoResult::error: return "socket error";
  }
  return "?";
}

IoResult write_all(int fd, const void* buf, size_t n, Clock::time_point deadline) {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      p += w;
      n -= size_t(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      IoResult r = wait_fd(fd, POLLOUT, deadline, nullptr);
      if (r != IoResult::ok) return r;
      continue;
    }
    return (errno == EPIPE || errno == ECONNRESET) ? IoResult::closed : IoResult::error;
  }
  return IoResult::ok;
}

IoResult read_all(int fd, void* buf, size_t n, Clock::time_point deadline, const std::atomic<bool>* stop) {
  char* p = static_cast<char*>(buf);
  while (n > 0) {
    IoResult r = wait_fd(fd, POLLIN, deadline, stop);
    if (r != IoResult::ok) return r;
    ssize_t got = ::recv(fd, p, n, MSG_DONTWAIT);
    if (got == 0) return IoResult::closed;
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return errno == ECONNRESET ? IoResult::closed : IoResult::error;
    }
    p += got;
    n -= size_t(got);
  }
  return IoResult::ok;
}

int connect_once(const std::string& host, int port, Clock::time_point deadline, std::string* why) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int gai = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (gai != 0) {
    *why = std::string("cannot resolve host: ") + gai_strerror(gai);
    return -1;
  }
  int fd = -1;
  for (addrinfo* ai = res; ai && fd < 0; ai = ai->ai_next) {
    int s = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (s < 0) continue;
    int r = ::connect(s, ai->ai_addr, ai->ai_addrlen);
    if (r < 0 && errno == EINPROGRESS) {
      if (wait_fd(s, POLLOUT, deadline, nullptr) == IoResult::ok) {
        int err = 0;
        socklen_t len = sizeof(err);
        ::getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
        r = err == 0 ? 0 : -1;
        errno = err;
      } else {
        errno = ETIMEDOUT;
      }
    }
    if (r == 0) {
      int one = 1;
      ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      fd = s;
    } else {
      *why = std::strerror(errno);
      ::close(s);
    }
  }
  ::freeaddrinfo(res);
  return fd;
}

int listen_any(int port, int* bound_port, std::string* why) {
  int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool v6 = fd >= 0;
  if (!v6) fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *why = std::strerror(errno);
    return -1;
  }
  int one = 1, zero = 0;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  int r;
  if (v6) {
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));  // accept IPv4 clients too
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_any;
    a.sin6_port = htons(uint16_t(port));
    r = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons(uint16_t(port));
    r = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  }
  if (r < 0 || ::listen(fd, 128) < 0) {
    *why = std::strerror(errno);
    ::close(fd);
    return -1;
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  *bound_port = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                         : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return fd;
}

namespace {

bool is_loopback(const sockaddr* a) {
  if (a->sa_family == AF_INET)
    return (ntohl(reinterpret_cast<const sockaddr_in*>(a)->sin_addr.s_addr) >> 24) == 127;
  if (a->sa_family == AF_INET6) {
    const in6_addr& x = reinterpret_cast<const sockaddr_in6*>(a)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(&x) || (IN6_IS_ADDR_V4MAPPED(&x) && x.s6_addr[12] == 127);
  }
  return false;
}

std::string address_text(const sockaddr* a) {
  char buf[INET6_ADDRSTRLEN] = {};
  const void* src = a->sa_family == AF_INET ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(a)->sin_addr)
                                             : static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(a)->sin6_addr);
  ::inet_ntop(a->sa_family, src, buf, sizeof buf);
  return buf;
}

int bind_listen(const sockaddr* a, socklen_t len, int port, int* bound_port, std::string* why) {
  const int fd = ::socket(a->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *why = std::strerror(errno);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_storage ss{};
  std::memcpy(&ss, a, len);
  if (ss.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(uint16_t(port));
  else reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(uint16_t(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) < 0 || ::listen(fd, 128) < 0) {
    *why = std::strerror(errno);
    ::close(fd);
    return -1;
  }
  socklen_t sl = sizeof(ss);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl);
  *bound_port = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                         : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return fd;
}

}  // namespace

int listen_on(const std::string& host, const std::string& iface, int port, int* bound_port, std::string* where,
              std::string* why) {
  if (!iface.empty()) {
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) {
      *why = std::string("getifaddrs: ") + std::strerror(errno);
      return -1;
    }
    int fd = -1;
    for (int family : {AF_INET, AF_INET6}) {
      for (ifaddrs* i = list; i && fd < 0; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == family && iface == i->ifa_name) {
          const socklen_t len = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
          fd = bind_listen(i->ifa_addr, len, port, bound_port, why);
          if (fd >= 0) *where = address_text(i->ifa_addr) + " (interface " + iface + ")";
        }
      if (fd >= 0) break;
    }
    ::freeifaddrs(list);
    if (fd < 0 && why->empty()) *why = "no interface named " + iface + " with an address";
    return fd;
  }
  if (host.empty() || host == "0.0.0.0" || host == "::" || host == "*") {
    *where = "every interface";
    return listen_any(port, bound_port, why);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int gai = ::getaddrinfo(host.c_str(), nullptr, &hints, &res); gai != 0) {
    *why = std::string("cannot resolve ") + host + ": " + gai_strerror(gai);
    return -1;
  }
  const bool loopback_name = host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
  bool any_loopback = false;
  int fd = -1;
  for (addrinfo* ai = res; ai && fd < 0; ai = ai->ai_next) {
    any_loopback = any_loopback || is_loopback(ai->ai_addr);
    if (is_loopback(ai->ai_addr) && !loopback_name) continue;
    fd = bind_listen(ai->ai_addr, ai->ai_addrlen, port, bound_port, why);
    if (fd >= 0) *where = address_text(ai->ai_addr);
  }
  ::freeaddrinfo(res);
  if (fd < 0 && any_loopback) {  // the host name maps to a loopback address here only: other hosts use its real one
    *where = "every interface (" + host + " resolves to a loopback address on this host)";
    return listen_any(port, bound_port, why);
  }
  return fd;
}

}  // namespace hpcinfer::net
