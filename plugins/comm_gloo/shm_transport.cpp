#include "shm_transport.hpp"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HPCINFER_PAUSE() _mm_pause()
#else
#define HPCINFER_PAUSE() std::this_thread::yield()
#endif

namespace hpcinfer::gloo_comm {

constexpr int kMaxRanks = 64;
constexpr size_t kHeaderBytes = 4096;

// The shared page: each rank's barrier count, and a bell the arriving rank rings (a futex word).
struct ShmTransport::Header {
  std::atomic<uint32_t> arrived[kMaxRanks];
  std::atomic<uint32_t> bell;
  std::atomic<int32_t> pid[kMaxRanks];  // each rank's process, so a waiting rank can tell a dead peer from a slow one
};
static_assert(std::atomic<uint32_t>::is_always_lock_free, "futex words must be plain lock-free 32-bit integers");

// One ordered pair's ring: the sender advances `tail` and rings `written`, the receiver advances `head` and rings
// `read` (byte counts since the start, never wrapped; positions in the data are count % ring_bytes).
struct ShmTransport::Ring {
  alignas(64) std::atomic<uint64_t> tail;
  std::atomic<uint32_t> written;
  alignas(64) std::atomic<uint64_t> head;
  std::atomic<uint32_t> read;
};
constexpr size_t kRingHeaderBytes = 128;

// A message in a ring: this header, then the payload padded to 16 bytes (none for a marker).
struct MessageHeader {
  uint32_t tag;
  uint32_t marker;  // 1: the payload comes over TCP (too large for the ring)
  uint64_t bytes;
};
static_assert(sizeof(MessageHeader) == 16);
size_t record_bytes(size_t payload) { return sizeof(MessageHeader) + (payload + 15) / 16 * 16; }

namespace {
std::string this_host() {
  char name[256] = {};
  return gethostname(name, sizeof(name) - 1) == 0 ? std::string(name) : std::string("?");
}
}  // namespace

namespace {

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// Sleeps on *word while it equals `seen`, at most `ms` milliseconds (a shared mapping: not FUTEX_PRIVATE).
void futex_wait(std::atomic<uint32_t>* word, uint32_t seen, long ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000};
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, seen, &ts, nullptr, 0);
}
// Whether process `pid` is gone: no such process, or a zombie its parent has not reaped yet.
bool process_gone(int32_t pid) {
  if (pid <= 0) return false;
  if (kill(pid, 0) != 0) return errno == ESRCH;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", int(pid));
  FILE* f = std::fopen(path, "r");
  if (!f) return true;
  char state = 0;
  const int got = std::fscanf(f, "%*d (%*[^)]) %c", &state);
  std::fclose(f);
  return got == 1 && (state == 'Z' || state == 'X');
}

void futex_wake_all(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, kMaxRanks, nullptr, nullptr, 0);
}

}  // namespace

ShmTransport::ShmTransport(int rank, int size, const std::string& name, size_t slot_bytes, size_t ring_bytes)
    : rank_(rank), size_(size), name_(name), slot_bytes_((slot_bytes + 63) / 64 * 64),
      ring_bytes_((ring_bytes + 4095) / 4096 * 4096) {
  if (size < 2 || size > kMaxRanks) throw std::runtime_error("shared memory collectives: world size out of range");
  const size_t pairs = size_t(size) * size_t(size - 1);
  rings_offset_ = kHeaderBytes + size_t(size) * slot_bytes_;
  ring_data_offset_ = rings_offset_ + (pairs * kRingHeaderBytes + 4095) / 4096 * 4096;
  map_bytes_ = ring_data_offset_ + (ring_bytes_ > 0 ? pairs * ring_bytes_ : 0);
  const int fd = rank == 0 ? shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600) : shm_open(name.c_str(), O_RDWR, 0600);
  if (fd < 0) throw std::runtime_error(name + ": " + errno_text("shm_open"));
  if (rank == 0) {  // reserve the pages now: a tmpfs that is too small fails here, not with SIGBUS on a later write
    if (const int rc = posix_fallocate(fd, 0, off_t(map_bytes_)); rc != 0) {
      close(fd), shm_unlink(name.c_str());
      errno = rc;
      throw std::runtime_error(name + ": " + errno_text("posix_fallocate"));
    }
  }
  map_ = mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    if (rank == 0) shm_unlink(name.c_str());
    throw std::runtime_error(name + ": " + errno_text("mmap"));
  }
  static_assert(sizeof(Header) <= kHeaderBytes, "the header fits its page");
  hdr_ = static_cast<Header*>(map_);
  hdr_->pid[rank].store(int32_t(getpid()), std::memory_order_release);  // read only after the setup's TCP barrier
}

void ShmTransport::unlink_name() { shm_unlink(name_.c_str()); }

ShmTransport::~ShmTransport() {
  if (map_) munmap(map_, map_bytes_);
}

uint8_t* ShmTransport::slot(int r) const {
  return static_cast<uint8_t*>(map_) + kHeaderBytes + size_t(r) * slot_bytes_;
}

size_t ShmTransport::pair_index(int src, int dst) const {
  return size_t(src) * size_t(size_ - 1) + size_t(dst < src ? dst : dst - 1);
}
ShmTransport::Ring* ShmTransport::ring(int src, int dst) const {
  return reinterpret_cast<Ring*>(static_cast<uint8_t*>(map_) + rings_offset_ + pair_index(src, dst) * kRingHeaderBytes);
}
uint8_t* ShmTransport::ring_data(int src, int dst) const {
  return static_cast<uint8_t*>(map_) + ring_data_offset_ + pair_index(src, dst) * ring_bytes_;
}

// Spins about 50 us (the peer is usually just behind), then sleeps on `bell` in 50 ms steps; between steps, checks
// whether the processes of `peers` (those still awaited) are gone and the deadline.
void ShmTransport::wait_until(const std::function<bool()>& ready, std::atomic<uint32_t>* bell,
                              const std::function<std::vector<int>()>& awaited, Deadline deadline,
                              const std::function<std::string()>& what) {
  const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
  for (int i = 0; !ready(); ++i) {
    if (i < 64 || std::chrono::steady_clock::now() < spin_until) {
      HPCINFER_PAUSE();
      continue;
    }
    const uint32_t seen = bell->load(std::memory_order_acquire);
    if (ready()) break;
    std::string missing, dead;
    for (int q : awaited()) {
      const int32_t pid = hdr_->pid[q].load(std::memory_order_acquire);
      missing += (missing.empty() ? "rank " : ", rank ") + std::to_string(q) + " (pid " + std::to_string(pid) + ")";
      if (process_gone(pid))
        dead += (dead.empty() ? "rank " : ", rank ") + std::to_string(q) + " (pid " + std::to_string(pid) + ")";
    }
    if (!dead.empty())
      throw std::runtime_error(what() + " failed (shared memory on host " + this_host() + "): " + dead +
                               " died, its process is gone");
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline)
      throw std::runtime_error(what() + " timed out (shared memory on host " + this_host() + ": " + missing +
                               " did not get there before the deadline; is it alive, not stopped, and in the same op?)");
    const long left = long(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count());
    futex_wait(bell, seen, std::clamp(left, 1L, 50L));
  }
}

size_t ShmTransport::max_message() const { return ring_bytes_ / 2; }

void ShmTransport::post(int dst, uint32_t tag, const void* data, size_t bytes, bool marker, Deadline deadline,
                        const std::string& who) {
  Ring* r = ring(rank_, dst);
  const size_t need = record_bytes(marker ? 0 : bytes);
  if (need > ring_bytes_) throw std::logic_error("shared memory: message larger than its ring");
  const uint64_t tail = r->tail.load(std::memory_order_relaxed);
  wait_until([&] { return tail + need - r->head.load(std::memory_order_acquire) <= ring_bytes_; }, &r->read,
             [&] { return std::vector<int>{dst}; }, deadline, [&] { return "send to rank " + std::to_string(dst) + who; });
  uint8_t* base = ring_data(rank_, dst);
  const MessageHeader h{tag, marker ? 1u : 0u, uint64_t(bytes)};
  const size_t at = size_t(tail % ring_bytes_);  // 16-aligned: the header never wraps
  std::memcpy(base + at, &h, sizeof h);
  if (!marker && bytes > 0) {
    const size_t from = (at + sizeof h) % ring_bytes_, first = std::min(bytes, ring_bytes_ - from);
    std::memcpy(base + from, data, first);
    std::memcpy(base, static_cast<const uint8_t*>(data) + first, bytes - first);
  }
  r->tail.store(tail + need, std::memory_order_release);
  r->written.fetch_add(1, std::memory_order_acq_rel);
  futex_wake_all(&r->written);
}

bool ShmTransport::take(int src, uint32_t tag, void* buf, size_t bytes, Deadline deadline, const std::string& who) {
  auto& parked = parked_[{src, tag}];
  auto what = [&] { return "recv from rank " + std::to_string(src) + who; };  // built only for an error
  auto check_size = [&](uint64_t got) {
    if (got != bytes)
      throw std::runtime_error(what() + ": message of " + std::to_string(got) + " bytes, expected " + std::to_string(bytes));
  };
  if (!parked.empty()) {  // an earlier recv set it aside while looking for another tag
    Parked p = std::move(parked.front());
    parked.pop_front();
    check_size(p.bytes);
    if (!p.marker) std::memcpy(buf, p.data.data(), bytes);
    return !p.marker;
  }
  Ring* r = ring(src, rank_);
  const uint8_t* base = ring_data(src, rank_);
  for (;;) {
    const uint64_t head = r->head.load(std::memory_order_relaxed);
    wait_until([&] { return r->tail.load(std::memory_order_acquire) > head; }, &r->written,
               [&] { return std::vector<int>{src}; }, deadline, what);
    MessageHeader h;
    const size_t at = size_t(head % ring_bytes_);
    std::memcpy(&h, base + at, sizeof h);
    const bool mine = h.tag == tag;
    if (mine) check_size(h.bytes);
    std::vector<uint8_t> aside;
    uint8_t* to = mine ? static_cast<uint8_t*>(buf) : nullptr;
    if (!h.marker && h.bytes > 0) {
      if (!mine) aside.resize(h.bytes), to = aside.data();
      const size_t from = (at + sizeof h) % ring_bytes_, first = std::min(size_t(h.bytes), ring_bytes_ - from);
      std::memcpy(to, base + from, first);
      std::memcpy(to + first, base, size_t(h.bytes) - first);
    }
    r->head.store(head + record_bytes(h.marker ? 0 : h.bytes), std::memory_order_release);
    r->read.fetch_add(1, std::memory_order_acq_rel);
    futex_wake_all(&r->read);
    if (mine) return !h.marker;
    parked_[{src, h.tag}].push_back(Parked{h.marker != 0, h.bytes, std::move(aside)});
  }
}

// Everyone's count reaches this rank's.
void ShmTransport::barrier(Deadline deadline, const std::string& who, const char* op) {
  const uint32_t mine = ++gen_;
  hdr_->arrived[rank_].store(mine, std::memory_order_release);
  hdr_->bell.fetch_add(1, std::memory_order_acq_rel);
  futex_wake_all(&hdr_->bell);
  auto behind = [&] {  // the ranks still awaited (the slow path only)
    std::vector<int> out;
    for (int q = 0; q < size_; ++q)
      if (int32_t(hdr_->arrived[q].load(std::memory_order_acquire) - mine) < 0) out.push_back(q);
    return out;
  };
  auto all_here = [&] {  // the spin's test: no allocation
    for (int q = 0; q < size_; ++q)
      if (int32_t(hdr_->arrived[q].load(std::memory_order_acquire) - mine) < 0) return false;
    return true;
  };
  wait_until(all_here, &hdr_->bell, behind, deadline, [&] { return std::string(op) + who; });
}

void ShmTransport::allreduce_sum_f32(float* data, size_t count, Deadline deadline, const std::string& who) {
  const size_t per = slot_bytes_ / sizeof(float);
  for (size_t off = 0; off < count; off += per) {
    const size_t n = std::min(per, count - off);
    std::memcpy(slot(rank_), data + off, n * sizeof(float));
    barrier(deadline, who, "allreduce");
    float* out = data + off;  // [n]: rank 0's values, then + rank 1's, + rank 2's ... (the same order everywhere)
    std::memcpy(out, slot(0), n * sizeof(float));
    for (int q = 1; q < size_; ++q) {
      const float* in = reinterpret_cast<const float*>(slot(q));
      for (size_t i = 0; i < n; ++i) out[i] += in[i];
    }
    barrier(deadline, who, "allreduce");  // nobody writes its slot again before all have read
  }
}

void ShmTransport::allgather(const void* in, size_t bytes_per_rank, void* out, Deadline deadline,
                               const std::string& who) {
  const auto* src = static_cast<const uint8_t*>(in);
  auto* dst = static_cast<uint8_t*>(out);
  for (size_t off = 0; off < bytes_per_rank; off += slot_bytes_) {
    const size_t n = std::min(slot_bytes_, bytes_per_rank - off);
    std::memmove(slot(rank_), src + off, n);
    barrier(deadline, who, "allgather");
    for (int q = 0; q < size_; ++q) std::memcpy(dst + size_t(q) * bytes_per_rank + off, slot(q), n);
    barrier(deadline, who, "allgather");
  }
}

}  // namespace hpcinfer::gloo_comm
