// Comm plugins loaded as shared objects and run as real processes on loopback: gloo ranks are forked children
// (file store and TCP store), mpi ranks are this executable relaunched under mpirun, nccl only probes here.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <thread>

#include "comm_worker_checks.hpp"
#include "core/backend/cpu_backend.hpp"
#include "core/runtime/device_communicator.hpp"
#include "core/rendezvous/kv_store.hpp"
#include "core/rendezvous/launch_env.hpp"
#include "hpcinfer/plugin.hpp"
#include "support/test_support.hpp"

using namespace hpcinfer;
using namespace std::chrono_literals;

namespace {

std::string plugin_path(const std::string& name) { return test::plugin_dir() + "/libhpcinfer_comm_" + name + ".so"; }

// Loads a comm plugin once per process and keeps it loaded (objects it created must never outlive it).
const PluginInfo* load_plugin(const std::string& name) {
  static std::map<std::string, std::unique_ptr<boost::dll::shared_library>> libs;
  auto& lib = libs[name];
  if (!lib) lib = std::make_unique<boost::dll::shared_library>(plugin_path(name), boost::dll::load_mode::rtld_now);
  auto entry = lib->get<const PluginInfo*()>(HPCINFER_PLUGIN_SYMBOL);
  return entry();
}

std::unique_ptr<Communicator> create_comm(const PluginInfo* info) {
  return std::unique_ptr<Communicator>(static_cast<Communicator*>(info->create()));
}

// Runs `body(rank, comm, store)` in n forked ranks that rendezvous through `store_spec`. Returns one message per
// rank: "" when the body returned "" and nothing threw, otherwise what went wrong. Ranks still running after
// `limit` are killed and reported.
using Body = std::function<std::string(int rank, Communicator& comm, KeyValueStore& store)>;
std::vector<std::string> run_ranks(int n, const std::string& store_spec, std::chrono::milliseconds comm_timeout,
                                   const Body& body, const std::filesystem::path& scratch,
                                   bool final_barrier = true, std::chrono::seconds limit = 60s) {
  const PluginInfo* info = load_plugin("gloo");
  std::vector<pid_t> pids;
  for (int r = 0; r < n; ++r) {
    pid_t pid = fork();
    if (pid == 0) {
      std::string result;
      try {
        auto store = make_store(store_spec, r, n, 20s);
        auto comm = create_comm(info);
        CommInit init;
        init.rank = r;
        init.size = n;
        init.store = store.get();
        init.prefix = "test";
        init.timeout = comm_timeout;
        init.hostname = "127.0.0.1";
        comm->init(init);
        result = body(r, *comm, *store);
        if (result.empty() && final_barrier) comm->barrier();  // nobody tears down while a peer still talks to it
      } catch (const std::exception& e) {
        result = std::string("exception: ") + e.what();
      }
      std::ofstream(scratch / ("rank" + std::to_string(r) + ".txt")) << (result.empty() ? "OK" : result);
      _exit(0);
    }
    pids.push_back(pid);
  }
  std::vector<std::string> out(n);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (int r = 0; r < n; ++r) {
    int status = 0;
    while (waitpid(pids[r], &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pids[r], SIGKILL);
        waitpid(pids[r], &status, 0);
        out[r] = "killed: still running after the test limit";
        break;
      }
      std::this_thread::sleep_for(5ms);
    }
    if (!out[r].empty()) continue;
    std::string text = test::read_file(scratch / ("rank" + std::to_string(r) + ".txt"));
    if (WIFSIGNALED(status)) out[r] = "died by signal " + std::to_string(WTERMSIG(status));
    else out[r] = text == "OK" ? "" : (text.empty() ? "no result written" : text);
  }
  return out;
}

std::string tcp_spec() {
  // A fresh port per run: bind port 0, read it, release it (rank 0's store binds it again right away).
  TcpStore probe("127.0.0.1", 0, true, 1s);
  return "tcp://127.0.0.1:" + std::to_string(probe.port());
}

struct World {
  int ranks;
  bool tcp;
};
std::string world_name(const testing::TestParamInfo<World>& p) {
  return std::to_string(p.param.ranks) + "ranks_" + (p.param.tcp ? "tcp" : "file");
}

class GlooWorld : public testing::TestWithParam<World> {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(plugin_path("gloo"))) GTEST_SKIP() << "plugin not built: " << plugin_path("gloo");
  }
  std::string spec() { return GetParam().tcp ? tcp_spec() : "file://" + (dir_ / "store").string(); }
  test::ScratchDir dir_;
};

}  // namespace

TEST(CommPlugins, GlooLoadsWithTheRightAbi) {
  if (!std::filesystem::exists(plugin_path("gloo"))) GTEST_SKIP() << "plugin not built: " << plugin_path("gloo");
  const PluginInfo* info = load_plugin("gloo");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->abi_version, kPluginAbiVersion);
  EXPECT_EQ(info->kind, PluginKind::comm);
  EXPECT_STREQ(info->name, "gloo");
  EXPECT_STREQ(info->version, "1.0.0");
  auto comm = create_comm(info);
  EXPECT_EQ(comm->memory_space(), MemorySpace::host);
  try {
    comm->barrier();
    ADD_FAILURE() << "barrier before init must throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("before init"), std::string::npos) << e.what();
  }
}

TEST_P(GlooWorld, CollectivesAndPointToPoint) {
  auto results = run_ranks(GetParam().ranks, spec(), 20s,
                           [](int, Communicator& c, KeyValueStore&) { return test::check_collectives(c); }, dir_.path());
  for (size_t r = 0; r < results.size(); ++r) EXPECT_EQ(results[r], "") << "rank " << r;
}

// The last rank dies (SIGKILL, no cleanup) after the first barrier; rank 0 is blocked in the second barrier
// (waiting on every rank) and must throw an error naming the dead rank, well before the 20 s op timeout.
TEST_P(GlooWorld, DeadPeerIsNamedBySurvivor) {
  const int n = GetParam().ranks;
  if (n < 2) GTEST_SKIP() << "needs a peer to kill";
  auto results = run_ranks(n, spec(), 20s, [n](int r, Communicator& c, KeyValueStore&) -> std::string {
    c.barrier();
    if (r == n - 1) raise(SIGKILL);
    try {
      if (n == 2) {
        std::vector<float> v(64, 1.0f);
        c.allreduce_sum_f32(v.data(), v.size());
      } else {
        c.barrier();
      }
    } catch (const std::runtime_error& e) {
      std::string msg = e.what();
      if (r == 0 && msg.find("rank " + std::to_string(n - 1)) == std::string::npos)
        return "rank 0's error does not name rank " + std::to_string(n - 1) + ": " + msg;
      if (msg.find(n == 2 ? "allreduce" : "barrier") == std::string::npos) return "error does not name the op: " + msg;
      return "";
    }
    return "survivor did not throw";
  }, dir_.path(), /*final_barrier=*/false);
  for (int r = 0; r < n - 1; ++r) EXPECT_EQ(results[r], "") << "rank " << r;
  EXPECT_EQ(results[n - 1], "died by signal 9");
}

INSTANTIATE_TEST_SUITE_P(Loopback, GlooWorld,
                         testing::Values(World{1, false}, World{2, false}, World{3, false}, World{4, false}, World{2, true},
                                         World{3, true}, World{4, true}),
                         world_name);

// Ranks on one host: all-reduce, all-gather and messages go through shared memory (HPCINFER_GLOO_SHM=0: TCP). Both paths give
// every rank the same values; with 2 ranks the same bits (a + b = b + a), with 4 within float rounding of each other.
// A message larger than a shared-memory slot (4 MiB per rank) goes through in pieces. A rank killed while the other
// waits in a shared-memory all-reduce is named at once as dead, not at the 20 s timeout.
TEST(GlooSharedMemory, SameSumsAsTcpMessagesInOrderAndADeadRankNamedAtOnce) {
  if (!std::filesystem::exists(plugin_path("gloo"))) GTEST_SKIP() << "plugin not built: " << plugin_path("gloo");
  test::ScratchDir dir;
  const size_t count = (size_t(6) << 20) / sizeof(float) + 7;  // 6 MiB + 28 bytes: two pieces of a 4 MiB slot
  for (int n : {2, 4}) {
    std::map<std::string, std::vector<std::vector<float>>> sums;  // path -> per rank
    for (const char* path : {"shm", "tcp"}) {
      setenv("HPCINFER_GLOO_SHM", std::string(path) == "shm" ? "1" : "0", 1);
      const std::string store = "file://" + (dir / (std::string(path) + std::to_string(n))).string();
      auto results = run_ranks(n, store, 20s, [&](int r, Communicator& c, KeyValueStore&) -> std::string {
        std::vector<float> v(count);
        for (size_t i = 0; i < count; ++i) v[i] = float((i * 2654435761u + size_t(r) * 40503u) % 1000) / 997.0f - 0.5f;
        c.allreduce_sum_f32(v.data(), v.size());
        std::vector<int> got(size_t(n) * 3);
        const int mine[3] = {r, r * 10, -r};
        c.allgather(mine, sizeof mine, got.data());
        for (int q = 0; q < n; ++q)
          if (got[size_t(q) * 3] != q || got[size_t(q) * 3 + 1] != q * 10 || got[size_t(q) * 3 + 2] != -q)
            return "allgather: block of rank " + std::to_string(q) + " is wrong";
        std::ofstream(dir / ("sum_" + std::to_string(r))) .write(reinterpret_cast<const char*>(v.data()),
                                                                 std::streamsize(v.size() * sizeof(float)));
        return "";
      }, dir.path());
      for (int r = 0; r < n; ++r) ASSERT_EQ(results[size_t(r)], "") << path << " rank " << r;
      for (int r = 0; r < n; ++r) {
        const std::string raw = test::read_file(dir / ("sum_" + std::to_string(r)));
        std::vector<float> v(raw.size() / sizeof(float));
        std::memcpy(v.data(), raw.data(), raw.size());
        sums[path].push_back(v);
      }
    }
    unsetenv("HPCINFER_GLOO_SHM");
    for (int r = 1; r < n; ++r) EXPECT_EQ(sums["shm"][size_t(r)], sums["shm"][0]) << "shm: rank " << r << " differs";
    ASSERT_EQ(sums["shm"][0].size(), count);
    double worst = 0;
    for (size_t i = 0; i < count; ++i) worst = std::max(worst, double(std::abs(sums["shm"][0][i] - sums["tcp"][0][i])));
    if (n == 2) EXPECT_EQ(worst, 0.0) << "two ranks: shared memory and the TCP ring must give the same bits";
    else EXPECT_LE(worst, 1e-5) << "four ranks: another summation order, same values within rounding";
  }
  // Point-to-point through the rings: tags received out of the order they were sent (the receiver parks the others),
  // a 3 MiB message (over TCP, its place in the order kept by a marker), and 300 x 16 KiB wrapping a 2 MiB ring.
  auto p2p = run_ranks(2, "file://" + (dir / "p2p").string(), 20s, [](int r, Communicator& c, KeyValueStore&) -> std::string {
    const size_t big = size_t(3) << 20, small = 16 << 10;
    auto fill = [](std::vector<uint8_t>& v, int k) { for (size_t i = 0; i < v.size(); ++i) v[i] = uint8_t(i * 7 + size_t(k) * 13); };
    std::vector<uint8_t> a(100), b(big), d(40), e(small);
    if (r == 0) {
      fill(a, 1), fill(b, 2), fill(d, 3);
      c.send(a.data(), a.size(), 1, 30);
      c.send(b.data(), b.size(), 1, 31);
      c.send(d.data(), d.size(), 1, 30);
      c.send(a.data(), a.size(), 1, 31);
      for (int k = 0; k < 300; ++k) fill(e, k), c.send(e.data(), e.size(), 1, 32);
      return "";
    }
    std::vector<uint8_t> want_a(100), want_b(big), want_d(40), want_e(small), got;
    fill(want_a, 1), fill(want_b, 2), fill(want_d, 3);
    got.resize(big), c.recv(got.data(), big, 0, 31);
    if (got != want_b) return "tag 31 first message (3 MiB over TCP) is wrong";
    got.resize(100), c.recv(got.data(), 100, 0, 31);
    if (got != want_a) return "tag 31 second message is wrong";
    got.resize(100), c.recv(got.data(), 100, 0, 30);
    if (got != want_a) return "tag 30 first message (parked) is wrong";
    got.resize(40), c.recv(got.data(), 40, 0, 30);
    if (got != want_d) return "tag 30 second message (parked) is wrong";
    for (int k = 0; k < 300; ++k) {
      fill(want_e, k), got.resize(small), c.recv(got.data(), small, 0, 32);
      if (got != want_e) return "16 KiB message " + std::to_string(k) + " is wrong";
    }
    return "";
  }, dir.path());
  EXPECT_EQ(p2p[0], "");
  EXPECT_EQ(p2p[1], "");
  // The dead rank.
  const auto t0 = std::chrono::steady_clock::now();
  auto results = run_ranks(2, "file://" + (dir / "dead").string(), 20s, [](int r, Communicator& c, KeyValueStore&) -> std::string {
    c.barrier();
    if (r == 1) raise(SIGKILL);
    std::vector<float> v(64, 1.0f);
    try {
      c.allreduce_sum_f32(v.data(), v.size());
    } catch (const std::runtime_error& e) {
      const std::string msg = e.what();
      if (msg.find("shared memory") == std::string::npos || msg.find("rank 1 (pid") == std::string::npos ||
          msg.find("died") == std::string::npos)
        return "the error does not say the shared-memory peer rank 1 died: " + msg;
      return "";
    }
    return "survivor did not throw";
  }, dir.path(), /*final_barrier=*/false);
  EXPECT_EQ(results[0], "");
  EXPECT_EQ(results[1], "died by signal 9");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s) << "the dead rank was found by the timeout, not at once";
}

// A host backend that calls its own buffers device memory: DeviceCommunicator must stage exactly those through host
// buffers (host ones pass straight through) and give the inner transport's results byte for byte.
class PretendDevice final : public CpuBackend {
 public:
  PretendDevice() : CpuBackend(1) {}
  MemorySpace memory_space() const override { return MemorySpace::cuda; }
  void* alloc(size_t bytes) override {
    void* p = CpuBackend::alloc(bytes);
    mine_.push_back(p);
    return p;
  }
  bool is_device_pointer(const void* p) const override {
    return std::find(mine_.begin(), mine_.end(), p) != mine_.end();
  }

 private:
  std::vector<void*> mine_;
};

TEST(DeviceCommunicatorOverGloo, StagesDeviceBuffersOnlyAndKeepsEveryResult) {
  if (!std::filesystem::exists(plugin_path("gloo"))) GTEST_SKIP() << "plugin not built: " << plugin_path("gloo");
  test::ScratchDir dir;
  const auto out = run_ranks(2, "file://" + (dir / "store").string(), 20s, [](int rank, Communicator& comm, KeyValueStore&) -> std::string {
    PretendDevice dev;
    DeviceCommunicator dc(comm, dev);
    if (dc.memory_space() != MemorySpace::cuda) return "memory_space() is not the backend's";
    auto dev_floats = [&](std::vector<float> v) {
      float* p = static_cast<float*>(dev.alloc(v.size() * sizeof(float)));
      std::memcpy(p, v.data(), v.size() * sizeof(float));
      return p;
    };
    float* a = dev_floats({float(rank + 1), 10.0f * float(rank + 1), -1.0f});
    dc.allreduce_sum_f32(a, 3);
    if (a[0] != 3.0f || a[1] != 30.0f || a[2] != -2.0f) return "allreduce through staging";
    const uint64_t after_allreduce = dc.staged_bytes();
    if (after_allreduce != 2 * 3 * sizeof(float)) return "allreduce staged " + std::to_string(after_allreduce) + " bytes";
    // point to point: a host header (not staged) and a device payload (staged), both directions
    int header = 100 + rank;
    float* payload = dev_floats({float(rank), float(rank) + 0.5f});
    dc.send(&header, sizeof header, 1 - rank, 1);
    dc.send(payload, 2 * sizeof(float), 1 - rank, 1);
    int got_header = 0;
    float* got = dev_floats({0, 0});
    dc.recv(&got_header, sizeof got_header, 1 - rank, 1);
    dc.recv(got, 2 * sizeof(float), 1 - rank, 1);
    if (got_header != 100 + (1 - rank) || got[0] != float(1 - rank) || got[1] != float(1 - rank) + 0.5f)
      return "send/recv through staging";
    if (dc.staged_bytes() != after_allreduce + 4 * sizeof(float)) return "a host buffer was staged";
    float* in = dev_floats({float(rank * 2), float(rank * 2 + 1)});
    float* all = dev_floats({0, 0, 0, 0});
    dc.allgather(in, 2 * sizeof(float), all);
    for (int i = 0; i < 4; ++i)
      if (all[i] != float(i)) return "allgather through staging";
    // alltoallv: rank r sends r+1 floats to each peer
    const size_t sb[2] = {size_t(rank + 1) * 4, size_t(rank + 1) * 4}, rb[2] = {4, 8};
    std::vector<float> src(size_t(2 * (rank + 1)));
    for (size_t i = 0; i < src.size(); ++i) src[i] = float(rank * 10 + int(i));
    float* s = dev_floats(src);
    float* r = dev_floats({0, 0, 0});
    dc.alltoallv(s, sb, r, rb);
    const float want0 = rank == 0 ? 0.0f : 1.0f;  // from rank 0: its block for me
    if (r[0] != want0) return "alltoallv through staging";
    float* b = dev_floats({float(rank), float(rank)});
    dc.broadcast(b, 2 * sizeof(float), 1);
    if (b[0] != 1.0f || b[1] != 1.0f) return "broadcast through staging";
    dc.barrier();
    return "";
  }, dir.path());
  for (int r = 0; r < 2; ++r) EXPECT_EQ(out[size_t(r)], "") << "rank " << r;
}

TEST(GlooTimeouts, RecvWithNoSenderTimesOutNamingThePeer) {
  if (!std::filesystem::exists(plugin_path("gloo"))) GTEST_SKIP() << "plugin not built: " << plugin_path("gloo");
  test::ScratchDir dir;
  auto results = run_ranks(2, "file://" + (dir / "store").string(), 300ms,
                           [](int r, Communicator& c, KeyValueStore& store) -> std::string {
                             if (r == 1) {  // alive but silent until rank 0 has given up
                               store.get("rank0-done", 20s);
                               return "";
                             }
                             std::string msg;
                             try {
                               float x;
                               c.recv(&x, sizeof(x), 1, 3);
                               msg = "recv returned without a sender";
                             } catch (const std::runtime_error& e) {
                               std::string what = e.what();
                               if (what.find("recv from rank 1 timed out") == std::string::npos)
                                 msg = "unexpected error: " + what;
                             }
                             store.set("rank0-done", {1});
                             return msg;
                           },
                           dir.path(), /*final_barrier=*/false);
  EXPECT_EQ(results[0], "");
  EXPECT_EQ(results[1], "");
}

// ---- buffered sends and group communicators (gloo) ----

TEST(GlooBuffered, BothSend3x8MiBFirstThenReceiveInOrder) {
  if (!std::filesystem::exists(plugin_path("gloo"))) GTEST_SKIP() << "plugin not built: " << plugin_path("gloo");
  test::ScratchDir dir;
  auto results = run_ranks(2, "file://" + (dir / "store").string(), 20s,
                           [](int, Communicator& c, KeyValueStore&) { return test::check_buffered_sends(c); },
                           dir.path());
  EXPECT_EQ(results[0], "");
  EXPECT_EQ(results[1], "");
}

// Rank 1 dies after the barrier; rank 0 sends to it (returns: buffered) and must hear about it from the send
// itself or, at the latest, from the next barrier, naming rank 1.
// Over TCP the buffered send itself (or the barrier waiting for it) reports the dead peer as "send to rank 1". On one
// host small messages go into the peer's shared-memory ring and are delivered there at once, so the send succeeds
// and the next call that waits on rank 1 (here the barrier) names it.
TEST(GlooBuffered, SendToADeadPeerIsReportedNamingIt) {
  if (!std::filesystem::exists(plugin_path("gloo"))) GTEST_SKIP() << "plugin not built: " << plugin_path("gloo");
  for (const char* shm : {"0", "1"}) {
    setenv("HPCINFER_GLOO_SHM", shm, 1);
    test::ScratchDir dir;
    auto results = run_ranks(2, "file://" + (dir / "store").string(), 5s,
                             [shm](int r, Communicator& c, KeyValueStore&) -> std::string {
                               c.barrier();
                               if (r == 1) raise(SIGKILL);
                               std::vector<uint8_t> buf(1 << 20, 3);
                               try {
                                 c.send(buf.data(), buf.size(), 1, 9);
                                 c.barrier();
                                 return "neither send nor barrier reported the dead peer";
                               } catch (const std::runtime_error& e) {
                                 std::string msg = e.what();
                                 const char* want = std::string(shm) == "0" ? "send to rank 1" : "rank 1";
                                 if (msg.find(want) == std::string::npos)
                                   return std::string("error does not name '") + want + "': " + msg;
                               }
                               return "";
                             },
                             dir.path(), /*final_barrier=*/false);
    EXPECT_EQ(results[0], "") << "HPCINFER_GLOO_SHM=" << shm;
    EXPECT_EQ(results[1], "died by signal 9");
  }
  unsetenv("HPCINFER_GLOO_SHM");
}

// 4 world ranks, groups "tp.stage0" = {0,1} and "tp.stage1" = {2,3}, each a second communicator beside the world.
TEST(GlooGroups, TwoGroupsOfTwoBesideTheWorld) {
  if (!std::filesystem::exists(plugin_path("gloo"))) GTEST_SKIP() << "plugin not built: " << plugin_path("gloo");
  test::ScratchDir dir;
  auto results = run_ranks(4, tcp_spec(), 20s, [](int r, Communicator& world, KeyValueStore& store) {
    auto group = create_comm(load_plugin("gloo"));
    CommInit init;
    init.rank = r % 2;
    init.size = 2;
    init.world_rank = r;
    init.world_size = 4;
    init.group = "tp.stage" + std::to_string(r / 2);
    init.store = &store;
    init.prefix = "test";
    init.timeout = 20s;
    init.hostname = "127.0.0.1";
    group->init(init);
    return test::check_groups(world, *group);
  }, dir.path());
  for (int r = 0; r < 4; ++r) EXPECT_EQ(results[r], "") << "rank " << r;
}

// ---- mpi: this executable relaunched under mpirun; MpiWorker.Run does the rank's work only there ----

TEST(MpiWorker, Run) {
  const char* mode_env = std::getenv("HPCINFER_TEST_MPI_WORKER");
  if (!mode_env) GTEST_SKIP() << "runs only under mpirun (started by the MpiComm tests)";
  const std::string mode = mode_env;
  LaunchEnv env = detect_launch_env();
  ASSERT_EQ(env.source, "openmpi");
  auto comm = create_comm(load_plugin("mpi"));
  CommInit init;
  init.rank = env.rank;
  init.size = env.size;
  init.timeout = mode == "timeout" ? 300ms : 20000ms;
  if (mode == "wrong_size") {
    init.size = env.size + 1;
    try {
      comm->init(init);
      ADD_FAILURE() << "init with a wrong world size must throw";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("wrong world size"), std::string::npos) << e.what();
    }
    return;
  }
  comm->init(init);
  EXPECT_EQ(comm->rank(), env.rank);
  if (mode == "collectives") {
    EXPECT_EQ(test::check_collectives(*comm), "");
  } else if (mode == "buffered") {
    EXPECT_EQ(test::check_buffered_sends(*comm), "");
  } else if (mode == "groups") {  // world ranks {0,1} and {2,3}: MPI_Comm_split, collective over the world
    auto group = create_comm(load_plugin("mpi"));
    CommInit g = init;
    g.group = "tp.stage" + std::to_string(env.rank / 2);
    g.rank = env.rank % 2;
    g.size = 2;
    g.world_rank = env.rank;
    g.world_size = env.size;
    group->init(g);
    EXPECT_EQ(test::check_groups(*comm, *group), "");
  } else if (mode == "timeout") {
    uint8_t token = 0;
    if (env.rank == 0) {
      try {
        comm->recv(&token, 1, 1, 3);
        ADD_FAILURE() << "recv with no sender returned";
      } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("recv from rank 1 timed out"), std::string::npos) << e.what();
      }
      token = 42;
      comm->send(&token, 1, 1, 4);  // a cancelled recv leaves the communicator usable
    } else if (env.rank == 1) {
      for (int attempt = 0; attempt < 100 && token != 42; ++attempt) {
        try {
          comm->recv(&token, 1, 0, 4);
        } catch (const std::runtime_error&) {  // rank 0 is still waiting out its own timeout
        }
      }
      EXPECT_EQ(token, 42);
    }
    comm->barrier();
  }
}

namespace {
// Runs MpiWorker.Run in `n` ranks under mpirun; returns the combined output, or "" after a GTEST_SKIP.
test::CommandResult mpirun_worker(const std::string& mode, int n) {
  std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  return test::run_command("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HPCINFER_TEST_MPI_WORKER=" + mode +
                           " timeout 120 mpirun --allow-run-as-root --oversubscribe -x HPCINFER_TEST_MPI_WORKER -n " +
                           std::to_string(n) + " " + test::shell_quote(exe) + " --gtest_filter=MpiWorker.Run --gtest_color=no");
}
size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}
class MpiComm : public testing::Test {
 protected:
  void SetUp() override {
    if (std::getenv("HPCINFER_TEST_MPI_WORKER")) GTEST_SKIP() << "inside an mpirun worker";
    if (test::run_command("command -v mpirun").exit_code != 0) GTEST_SKIP() << "mpirun not found on PATH";
    if (!std::filesystem::exists(plugin_path("mpi"))) GTEST_SKIP() << "plugin not built: " << plugin_path("mpi");
  }
};
}  // namespace

TEST_F(MpiComm, LoadsWithTheRightAbi) {
  const PluginInfo* info = load_plugin("mpi");
  EXPECT_EQ(info->abi_version, kPluginAbiVersion);
  EXPECT_EQ(info->kind, PluginKind::comm);
  EXPECT_STREQ(info->name, "mpi");
}

TEST_F(MpiComm, CollectivesWith2And3Ranks) {
  for (int n : {2, 3}) {
    auto r = mpirun_worker("collectives", n);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(count_of(r.output, "[  PASSED  ] 1 test."), size_t(n)) << r.output;
  }
}

TEST_F(MpiComm, BufferedSendsDoNotDeadlock) {
  auto r = mpirun_worker("buffered", 2);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(count_of(r.output, "[  PASSED  ] 1 test."), 2u) << r.output;
}

TEST_F(MpiComm, TwoGroupsOfTwoBesideTheWorld) {
  auto r = mpirun_worker("groups", 4);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(count_of(r.output, "[  PASSED  ] 1 test."), 4u) << r.output;
}

TEST_F(MpiComm, WrongWorldSizeIsAClearError) {
  auto r = mpirun_worker("wrong_size", 2);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(count_of(r.output, "[  PASSED  ] 1 test."), 2u) << r.output;
}

TEST_F(MpiComm, RecvWithNoSenderTimesOut) {
  auto r = mpirun_worker("timeout", 2);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(count_of(r.output, "[  PASSED  ] 1 test."), 2u) << r.output;
}

// ---- nccl: on a host without a GPU the plugin must still load and say why it is not usable ----

TEST(NcclComm, LoadsAndProbesWithoutAGpu) {
  if (!std::filesystem::exists(plugin_path("nccl")))
    GTEST_SKIP() << "plugin not built (CUDA off): " << plugin_path("nccl");
  const PluginInfo* info = load_plugin("nccl");
  EXPECT_EQ(info->abi_version, kPluginAbiVersion);
  EXPECT_STREQ(info->name, "nccl");
  ASSERT_NE(info->probe, nullptr);
  ProbeResult p = info->probe();
  if (p.usable) GTEST_SKIP() << "a CUDA device is present: probe says usable";
  EXPECT_NE(p.why.find("CUDA"), std::string::npos) << p.why;
  auto comm = create_comm(info);
  EXPECT_EQ(comm->memory_space(), MemorySpace::cuda);
}
