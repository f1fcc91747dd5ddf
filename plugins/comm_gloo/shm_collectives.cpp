#include "shm_collectives.hpp"

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
struct ShmCollectives::Header {
  std::atomic<uint32_t> arrived[kMaxRanks];
  std::atomic<uint32_t> bell;
  std::atomic<int32_t> pid[kMaxRanks];  // each rank's process, so a waiting rank can tell a dead peer from a slow one
};
static_assert(std::atomic<uint32_t>::is_always_lock_free, "futex words must be plain lock-free 32-bit integers");

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

ShmCollectives::ShmCollectives(int rank, int size, const std::string& name, size_t slot_bytes)
    : rank_(rank), size_(size), name_(name), slot_bytes_((slot_bytes + 63) / 64 * 64) {
  if (size < 2 || size > kMaxRanks) throw std::runtime_error("shared memory collectives: world size out of range");
  map_bytes_ = kHeaderBytes + size_t(size) * slot_bytes_;
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

void ShmCollectives::unlink_name() { shm_unlink(name_.c_str()); }

ShmCollectives::~ShmCollectives() {
  if (map_) munmap(map_, map_bytes_);
}

uint8_t* ShmCollectives::slot(int r) const {
  return static_cast<uint8_t*>(map_) + kHeaderBytes + size_t(r) * slot_bytes_;
}

// Everyone's count reaches this rank's: spin about 50 us (the partner is usually just behind), then sleep on the bell.
void ShmCollectives::barrier(Deadline deadline, const std::string& who, const char* op) {
  const uint32_t mine = ++gen_;
  hdr_->arrived[rank_].store(mine, std::memory_order_release);
  hdr_->bell.fetch_add(1, std::memory_order_acq_rel);
  futex_wake_all(&hdr_->bell);
  auto all_here = [&] {
    for (int q = 0; q < size_; ++q)
      if (int32_t(hdr_->arrived[q].load(std::memory_order_acquire) - mine) < 0) return false;
    return true;
  };
  const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
  for (int i = 0; !all_here(); ++i) {
    if (i < 64 || std::chrono::steady_clock::now() < spin_until) {
      HPCINFER_PAUSE();
      continue;
    }
    const uint32_t bell = hdr_->bell.load(std::memory_order_acquire);
    if (all_here()) break;
    const auto now = std::chrono::steady_clock::now();
    std::string missing, dead;
    for (int q = 0; q < size_; ++q) {
      if (int32_t(hdr_->arrived[q].load(std::memory_order_acquire) - mine) >= 0) continue;
      const int32_t pid = hdr_->pid[q].load(std::memory_order_acquire);
      missing += (missing.empty() ? "rank " : ", rank ") + std::to_string(q);
      if (process_gone(pid))
        dead += (dead.empty() ? "rank " : ", rank ") + std::to_string(q) + " (pid " + std::to_string(pid) + ")";
    }
    if (!dead.empty())
      throw std::runtime_error(std::string(op) + " on " + who + " (shared memory): " + dead +
                               " died: its process is gone");
    if (now >= deadline)
      throw std::runtime_error(std::string(op) + " on " + who + " (shared memory): " + missing +
                               " did not arrive before the timeout (is it alive and in the same op?)");
    const long left = long(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count());
    futex_wait(&hdr_->bell, bell, std::clamp(left, 1L, 50L));
  }
}

void ShmCollectives::allreduce_sum_f32(float* data, size_t count, Deadline deadline, const std::string& who) {
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

void ShmCollectives::allgather(const void* in, size_t bytes_per_rank, void* out, Deadline deadline,
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
