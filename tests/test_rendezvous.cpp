// Rendezvous stores (file, TCP) across threads and forked processes, and world detection from the environment.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <thread>

#include "core/rendezvous/kv_store.hpp"
#include "core/rendezvous/launch_env.hpp"
#include "core/rendezvous/store_secret.hpp"
#include "support/test_support.hpp"

using namespace hpcinfer;
using namespace std::chrono_literals;

namespace {

std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }
std::string text(const std::vector<uint8_t>& v) { return {v.begin(), v.end()}; }

// A port nothing listens on (bound then released).
int unused_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

template <class Fn>
std::string expect_throw(Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return "";
}

// Runs `body(rank)` in `n` forked children; returns how many exited with 0.
template <class Fn>
int run_forked(int n, Fn body) {
  std::vector<pid_t> pids;
  for (int r = 0; r < n; ++r) {
    pid_t pid = fork();
    if (pid == 0) {
      int rc = 1;
      try {
        rc = body(r) ? 0 : 1;
      } catch (const std::exception& e) {
        fprintf(stderr, "child %d: %s\n", r, e.what());
      }
      _exit(rc);
    }
    pids.push_back(pid);
  }
  int ok = 0;
  for (pid_t pid : pids) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) ++ok;
  }
  return ok;
}

// Store contract on any implementation, `a` and `b` being two handles on the same store.
void exercise_threads(KeyValueStore& a, KeyValueStore& b, const std::string& p = "") {
  EXPECT_FALSE(a.check(p + "alpha"));
  a.set(p + "alpha", bytes("one"));
  EXPECT_TRUE(b.check(p + "alpha"));
  EXPECT_EQ(text(b.get(p + "alpha", 1s)), "one");
  a.set(p + "alpha", bytes("two"));  // replace
  EXPECT_EQ(text(b.get(p + "alpha", 1s)), "two");
  a.set(p + "empty", {});
  EXPECT_TRUE(b.get(p + "empty", 1s).empty());
  std::vector<uint8_t> big(1 << 20);
  for (size_t i = 0; i < big.size(); ++i) big[i] = uint8_t(i * 7);
  b.set(p + "dir/with/slashes big", big);
  EXPECT_EQ(a.get(p + "dir/with/slashes big", 1s), big);
  // A getter blocked in one thread sees a value set later by another thread.
  std::thread setter([&] {
    std::this_thread::sleep_for(50ms);
    b.set(p + "late", bytes("arrived"));
  });
  EXPECT_EQ(text(a.get(p + "late", 10s)), "arrived");
  setter.join();
  // Many threads sharing one handle.
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      a.set(p + "t" + std::to_string(t), bytes(std::to_string(t * t)));
      EXPECT_EQ(text(a.get(p + "t" + std::to_string((t + 1) % 4), 10s)), std::to_string(((t + 1) % 4) * ((t + 1) % 4)));
    });
  for (auto& t : ts) t.join();
}

}  // namespace

TEST(FileStore, SetGetCheckAcrossThreads) {
  test::ScratchDir dir;
  FileStore a(dir / "store"), b(dir / "store");
  exercise_threads(a, b);
}

TEST(FileStore, MissingKeyTimesOutNamingKey) {
  test::ScratchDir dir;
  FileStore s(dir.path());
  auto t0 = std::chrono::steady_clock::now();
  std::string msg = expect_throw([&] { s.get("no-such-key", 100ms); });
  EXPECT_NE(msg.find("no-such-key"), std::string::npos) << msg;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);  // sanity bound, not a timing test
}

TEST(FileStore, AcrossForkedProcesses) {
  test::ScratchDir dir;
  const int n = 3;
  int ok = run_forked(n, [&](int r) {
    FileStore s(dir / "job");
    s.set("rank" + std::to_string(r), bytes("hello from " + std::to_string(r)));
    for (int p = 0; p < n; ++p)
      if (text(s.get("rank" + std::to_string(p), 10s)) != "hello from " + std::to_string(p)) return false;
    return true;
  });
  EXPECT_EQ(ok, n);
  FileStore s(dir / "job");
  EXPECT_EQ(text(s.get("rank2", 1s)), "hello from 2");
}

TEST(TcpStore, SetGetCheckAcrossThreads) {
  TcpStore server("127.0.0.1", 0, true, 5s);
  ASSERT_GT(server.port(), 0);
  TcpStore c1("127.0.0.1", server.port(), false, 5s);
  TcpStore c2("localhost", server.port(), false, 5s);
  exercise_threads(c1, c2);
  exercise_threads(server, c1, "second/");  // rank 0 reads its map directly
  EXPECT_EQ(text(c2.get("late", 1s)), "arrived");
}

TEST(TcpStore, AcrossForkedProcesses) {
  TcpStore server("127.0.0.1", 0, true, 5s);
  const int port = server.port(), n = 3;
  server.set("from-server", bytes("rank0"));
  int ok = run_forked(n, [&](int r) {
    TcpStore s("127.0.0.1", port, false, 10s);
    if (text(s.get("from-server", 10s)) != "rank0") return false;
    s.set("child" + std::to_string(r), bytes(std::to_string(100 + r)));
    for (int p = 0; p < n; ++p)
      if (text(s.get("child" + std::to_string(p), 10s)) != std::to_string(100 + p)) return false;
    return true;
  });
  EXPECT_EQ(ok, n);
  EXPECT_EQ(text(server.get("child1", 1s)), "101");
}

TEST(TcpStore, MissingKeyTimesOutNamingKey) {
  TcpStore server("127.0.0.1", 0, true, 5s);
  TcpStore client("127.0.0.1", server.port(), false, 5s);
  std::string msg = expect_throw([&] { client.get("never-set", 100ms); });
  EXPECT_NE(msg.find("never-set"), std::string::npos) << msg;
  EXPECT_FALSE(client.check("never-set"));
}

TEST(TcpStore, NoServerFailsNamingEndpoint) {
  int port = unused_port();
  auto t0 = std::chrono::steady_clock::now();
  std::string msg = expect_throw([&] { TcpStore("127.0.0.1", port, false, 300ms); });
  EXPECT_NE(msg.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << msg;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);  // sanity bound, not a timing test
}

TEST(TcpStore, ServerGoneIsAnErrorNotAHang) {
  auto server = std::make_unique<TcpStore>("127.0.0.1", 0, true, 5s);
  TcpStore client("127.0.0.1", server->port(), false, 2s);
  client.set("k", bytes("v"));
  const std::string endpoint = "127.0.0.1:" + std::to_string(server->port());
  server.reset();
  std::string msg = expect_throw([&] { client.get("k2", 1s); });
  EXPECT_NE(msg.find(endpoint), std::string::npos) << msg;
}

TEST(MakeStore, ParsesSpecs) {
  test::ScratchDir dir;
  auto fs = make_store("file://" + (dir / "s").string(), 1, 2, 1s);
  fs->set("x", bytes("y"));
  EXPECT_TRUE(fs->check("x"));
  int port = unused_port();
  auto server = make_store("tcp://127.0.0.1:" + std::to_string(port), 0, 2, 1s);
  auto client = make_store("tcp://127.0.0.1:" + std::to_string(port), 1, 2, 2s);
  client->set("a", bytes("b"));
  EXPECT_EQ(text(server->get("a", 1s)), "b");
  for (std::string bad : {"redis://h:1", "tcp://nohostport", "tcp://h:99999", "tcp://h:12x", "file://"}) {
    std::string msg = expect_throw([&] { make_store(bad, 0, 1, 100ms); });
    EXPECT_NE(msg.find(bad), std::string::npos) << msg;
  }
  std::string msg = expect_throw([&] { make_store("file:///tmp/x", 3, 2, 100ms); });
  EXPECT_NE(msg.find("rank 3"), std::string::npos) << msg;
}

// ---- the store against a hostile or misconfigured peer (issue 18) ----

namespace {
size_t rss_bytes() {
  std::ifstream in("/proc/self/statm");
  size_t pages = 0, resident = 0;
  in >> pages >> resident;
  return resident * size_t(sysconf(_SC_PAGESIZE));
}
int raw_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(uint16_t(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}
// A set frame claiming a `declared`-byte value, followed by only `sent` bytes of it.
std::string set_frame(const std::string& key, uint64_t declared, size_t sent) {
  std::string f(1, char(1));
  const uint32_t k = uint32_t(key.size());
  f.append(reinterpret_cast<const char*>(&k), 4);
  f += key;
  f.append(reinterpret_cast<const char*>(&declared), 8);
  f.append(sent, 'x');
  return f;
}
}  // namespace

TEST(TcpStoreHardening, ClientWithoutTheSecretIsRefusedAndChangesNothing) {
  TcpStore server("127.0.0.1", 0, true, 5s, "the-jobs-secret-0123456789");
  std::string msg = expect_throw([&] { TcpStore("127.0.0.1", server.port(), false, 2s, "another-secret-0123456789"); });
  EXPECT_NE(msg.find("refused this rank"), std::string::npos) << msg;
  EXPECT_NE(msg.find("HPCINFER_STORE_SECRET"), std::string::npos) << msg;
  // A raw client that ignores the greeting and sends a set frame: not admitted, the key stays unset.
  const int fd = raw_connect(server.port());
  ASSERT_GE(fd, 0);
  const std::string f = set_frame("hpcinfer/job/addr", 5, 5) + std::string(64, '\0');
  ASSERT_EQ(send(fd, f.data(), f.size(), MSG_NOSIGNAL), ssize_t(f.size()));
  char buf[64];
  ssize_t got = 0, n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) got += n;  // the server answers the greeting, then hangs up
  close(fd);
  EXPECT_LE(got, 41) << "more than the greeting and a refusal came back";
  EXPECT_FALSE(server.check("hpcinfer/job/addr"));
  TcpStore good("127.0.0.1", server.port(), false, 2s, "the-jobs-secret-0123456789");
  good.set("k", bytes("v"));
  EXPECT_EQ(text(server.get("k", 1s)), "v");
}

// Three 13-byte frames declaring 1 GiB values took rank 0 from 62 MB to 2.7 GB: declared lengths allocate nothing.
TEST(TcpStoreHardening, DeclaredValueLengthsAllocateNothing) {
  const std::string secret = "the-jobs-secret-0123456789";
  TcpStore server("127.0.0.1", 0, true, 5s, secret);
  const size_t before = rss_bytes();
  for (int i = 0; i < 3; ++i) {
    for (const bool admitted : {false, true}) {
      const int fd = raw_connect(server.port());
      ASSERT_GE(fd, 0);
      if (admitted) {  // a peer that knows the secret but lies about the length
        uint8_t hello[40];
        ASSERT_EQ(recv(fd, hello, sizeof hello, MSG_WAITALL), 40);
        const auto proof = store_proof(secret, hello + 8, 32);
        send(fd, proof.data(), proof.size(), MSG_NOSIGNAL);
        uint8_t status = 9;
        ASSERT_EQ(recv(fd, &status, 1, MSG_WAITALL), 1);
        EXPECT_EQ(status, 0);
      }
      const std::string f = set_frame("k" + std::to_string(i), (1ull << 28) - 1, 16);
      send(fd, f.data(), f.size(), MSG_NOSIGNAL);
      std::this_thread::sleep_for(50ms);
      close(fd);
    }
  }
  std::this_thread::sleep_for(200ms);
  EXPECT_LT(rss_bytes(), before + (64u << 20)) << "the server allocated what the frames declared";
  EXPECT_FALSE(server.check("k0"));
}

// fuzz_store found it: every connection left a finished but unjoined thread (its stack mapped) until the server
// could make no more threads. Thousands of short connections must leave the thread count where it was.
TEST(TcpStoreHardening, ShortConnectionsDoNotPileUpThreads) {
  // An ended but unjoined thread is gone from the kernel's thread count; its stack (8 MiB) stays mapped: VmSize.
  auto vm_kb = [] {
    std::ifstream in("/proc/self/status");
    for (std::string line; std::getline(in, line);)
      if (line.rfind("VmSize:", 0) == 0) return std::stol(line.substr(7));
    return -1L;
  };
  TcpStore server("127.0.0.1", 0, true, 5s, "the-jobs-secret-0123456789");
  const long before = vm_kb();
  for (int i = 0; i < 3000; ++i) {
    const int fd = raw_connect(server.port());
    ASSERT_GE(fd, 0) << "connection " << i;
    close(fd);
    if (i % 64 == 63) std::this_thread::sleep_for(20ms);  // within the listen backlog (else SYN retries take seconds)
  }
  std::this_thread::sleep_for(300ms);  // the last ones notice their peer has gone
  TcpStore client("127.0.0.1", server.port(), false, 2s, "the-jobs-secret-0123456789");  // reaps on accept
  client.set("k", bytes("v"));
  EXPECT_LT(vm_kb(), before + (1L << 20)) << "the stacks of ended connections' threads are kept (kB)";
  EXPECT_EQ(text(server.get("k", 1s)), "v");
}

TEST(TcpStoreHardening, ListensOnlyOnTheAddressItWasGiven) {
  // Another address of this host, not loopback: the store bound to 127.0.0.1 must not answer there.
  ifaddrs* list = nullptr;
  ASSERT_EQ(getifaddrs(&list), 0);
  std::string other;
  for (ifaddrs* i = list; i && other.empty(); i = i->ifa_next)
    if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET) {
      const uint32_t a = ntohl(reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr);
      if ((a >> 24) != 127) {
        char buf[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
        other = buf;
      }
    }
  freeifaddrs(list);
  if (other.empty()) GTEST_SKIP() << "this host has no IPv4 address besides loopback";
  TcpStore server("127.0.0.1", 0, true, 5s, "the-jobs-secret-0123456789");
  std::string msg = expect_throw([&] { TcpStore(other, server.port(), false, 300ms, "the-jobs-secret-0123456789"); });
  EXPECT_NE(msg.find(other), std::string::npos) << msg;
  // Bound to that address instead, it answers there.
  TcpStore there(other, 0, true, 5s, "the-jobs-secret-0123456789");
  TcpStore client(other, there.port(), false, 2s, "the-jobs-secret-0123456789");
  client.set("a", bytes("b"));
  EXPECT_EQ(text(there.get("a", 1s)), "b");
}

TEST(TcpStoreHardening, SecretFileReadableByOthersIsRefused) {
  test::ScratchDir dir;
  dir.write("secret", "0123456789abcdef0123\n");
  const std::string p = (dir / "secret").string();
  chmod(p.c_str(), 0644);
  setenv("HPCINFER_STORE_SECRET_FILE", p.c_str(), 1);
  const char* had = getenv("HPCINFER_STORE_SECRET");
  const std::string saved = had ? had : "";
  unsetenv("HPCINFER_STORE_SECRET");
  std::string msg = expect_throw([&] { store_secret(); });
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
  EXPECT_NE(msg.find("chmod 600"), std::string::npos) << msg;
  chmod(p.c_str(), 0600);
  EXPECT_EQ(store_secret(), "0123456789abcdef0123");
  unsetenv("HPCINFER_STORE_SECRET_FILE");
  if (!saved.empty()) setenv("HPCINFER_STORE_SECRET", saved.c_str(), 1);
}

// ---- world detection ----

namespace {
LaunchEnv detect(const std::map<std::string, std::string>& vars) {
  return detect_launch_env([&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}
}  // namespace

TEST(LaunchEnv, NoneIsRankZeroOfOne) {
  LaunchEnv e = detect({});
  EXPECT_EQ(e.rank, 0);
  EXPECT_EQ(e.size, 1);
  EXPECT_EQ(e.source, "none");
  EXPECT_FALSE(e.host.empty());
}

TEST(LaunchEnv, EachSource) {
  LaunchEnv h = detect({{"HPCINFER_RANK", "2"}, {"HPCINFER_WORLD_SIZE", "4"}, {"HPCINFER_JOB_ID", "j7"}});
  EXPECT_EQ(h.source, "hpcinfer");
  EXPECT_EQ(h.rank, 2);
  EXPECT_EQ(h.size, 4);
  EXPECT_EQ(h.local_rank, 2);
  EXPECT_EQ(h.job_id, "j7");
  LaunchEnv s = detect({{"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"}, {"SLURM_JOB_ID", "42"}});
  EXPECT_EQ(s.source, "slurm");
  EXPECT_EQ(s.rank, 3);
  EXPECT_EQ(s.size, 8);
  EXPECT_EQ(s.local_rank, 1);
  EXPECT_EQ(s.job_id, "42");
  LaunchEnv o = detect({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"},
                        {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}});
  EXPECT_EQ(o.source, "openmpi");
  EXPECT_EQ(o.rank, 1);
  EXPECT_EQ(o.size, 2);
  EXPECT_EQ(o.local_rank, 1);
}

TEST(LaunchEnv, OurLauncherWinsOverSlurm) {
  LaunchEnv e = detect({{"HPCINFER_RANK", "0"}, {"HPCINFER_WORLD_SIZE", "2"}, {"SLURM_PROCID", "5"},
                        {"SLURM_NTASKS", "6"}});
  EXPECT_EQ(e.source, "hpcinfer");
  EXPECT_EQ(e.size, 2);
}

TEST(LaunchEnv, MalformedValuesNameTheVariable) {
  std::string m1 = expect_throw([] { detect({{"SLURM_PROCID", "x1"}, {"SLURM_NTASKS", "2"}}); });
  EXPECT_NE(m1.find("SLURM_PROCID"), std::string::npos) << m1;
  std::string m2 = expect_throw([] { detect({{"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_SIZE", "0"}}); });
  EXPECT_NE(m2.find("OMPI_COMM_WORLD_SIZE"), std::string::npos) << m2;
  std::string m3 = expect_throw([] { detect({{"HPCINFER_RANK", "4"}, {"HPCINFER_WORLD_SIZE", "4"}}); });
  EXPECT_NE(m3.find("HPCINFER_RANK"), std::string::npos) << m3;
  std::string m4 = expect_throw([] { detect({{"HPCINFER_RANK", "1"}}); });
  EXPECT_NE(m4.find("HPCINFER_WORLD_SIZE"), std::string::npos) << m4;
  std::string m5 = expect_throw([] { detect({{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "2"}, {"SLURM_LOCALID", "-1"}}); });
  EXPECT_NE(m5.find("SLURM_LOCALID"), std::string::npos) << m5;
}

TEST(LaunchEnv, ReadsTheRealEnvironment) {
  setenv("HPCINFER_RANK", "1", 1);
  setenv("HPCINFER_WORLD_SIZE", "3", 1);
  LaunchEnv e = detect_launch_env();
  unsetenv("HPCINFER_RANK");
  unsetenv("HPCINFER_WORLD_SIZE");
  EXPECT_EQ(e.rank, 1);
  EXPECT_EQ(e.size, 3);
}
