// The TCP rendezvous store's wire protocol, against a live server in this process: the first input byte says
// whether the client is admitted (it answers the nonce with the right HMAC) or sends the input as its proof; the rest
// is sent as request frames, then the client hangs up and reads until the server closes.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <exception>
#include <memory>

#include "core/rendezvous/kv_store.hpp"
#include "core/rendezvous/store_secret.hpp"

namespace {
const std::string kSecret = "fuzzing-secret-0123456789";

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(uint16_t(port));
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto server = std::make_unique<hpcinfer::TcpStore>("127.0.0.1", 0, true, std::chrono::seconds(5), kSecret);
  if (size < 1) return 0;
  const int fd = connect_to(server->port());
  if (fd < 0) return 0;
  uint8_t hello[40];
  if (::recv(fd, hello, sizeof hello, MSG_WAITALL) == ssize_t(sizeof hello)) {
    if (data[0] & 1) {
      const auto proof = hpcinfer::store_proof(kSecret, hello + 8, 32);
      ::send(fd, proof.data(), proof.size(), MSG_NOSIGNAL);
      uint8_t status = 0;
      (void)::recv(fd, &status, 1, MSG_WAITALL);
    }
    ::send(fd, data + 1, size - 1, MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_WR);
    uint8_t buf[4096];
    while (::recv(fd, buf, sizeof buf, 0) > 0) {
    }
  }
  ::close(fd);
  return 0;
}
