#include "mpi_communicator.hpp"

#include <climits>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#include "kernels/cpu/convert.hpp"

namespace hpcinfer::mpi_comm {
namespace {

std::string mpi_error(int rc) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  MPI_Error_string(rc, text, &len);
  return std::string(text, size_t(len));
}

// Process-wide: communicators alive (world and groups) and whether one of them called MPI_Init_thread; the last
// one destroyed finalizes MPI then (a group communicator may outlive the world one).
int g_live = 0;
bool g_we_initialized = false;

// Stable positive color for MPI_Comm_split (FNV-1a, 31 bits).
int group_color(const std::string& name) {
  uint32_t h = 2166136261u;
  for (unsigned char ch : name) h = (h ^ ch) * 16777619u;
  return int(h & 0x7fffffffu);
}

}  // namespace

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (comm_ != MPI_COMM_NULL) {
    // Let every buffered send finish (or give up at its deadline: cancel, and leak the buffer MPI may still read).
    for (auto& p : pending_) {
      int done = 0;
      while (MPI_Test(&p.req, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && !done && Clock::now() < p.deadline)
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      if (!done) {
        MPI_Cancel(&p.req);
        MPI_Request_free(&p.req);
        new std::vector<uint8_t>(std::move(p.data));  // deliberately leaked: the send may still read it
      }
    }
    pending_.clear();
    if (broken_.empty()) MPI_Comm_free(&comm_);  // skip when peers may be gone
    --g_live;
  }
  if (g_live == 0 && g_we_initialized) MPI_Finalize();
}

std::string MpiCommunicator::peer_name(int peer) const {
  return "rank " + std::to_string(peer) + (group_.empty() ? "" : " of group " + group_);
}

void MpiCommunicator::init(const CommInit& init) {
  if (comm_ != MPI_COMM_NULL) throw std::runtime_error("mpi: init called twice on rank " + std::to_string(rank_));
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;  // MULTIPLE: a world and a group communicator may be used from different threads
    int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
    if (rc != MPI_SUCCESS) throw std::runtime_error("mpi: MPI_Init_thread failed: " + mpi_error(rc));
    g_we_initialized = true;
  }
  int world_rank = 0, world_size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  group_ = init.group;
  who_ = "rank " + std::to_string(init.rank) +
         (group_.empty() ? "" : " of group " + group_ + " (world rank " + std::to_string(world_rank) + ")");
  const int want_world_size = group_.empty() ? init.size : init.world_size;
  const int want_world_rank = group_.empty() ? init.rank : init.world_rank;
  if (want_world_size >= 0 && world_size != want_world_size)
    throw std::runtime_error("mpi: wrong world size: MPI started " + std::to_string(world_size) +
                             " ranks but the job expects " + std::to_string(want_world_size) +
                             " (launch with mpirun -n " + std::to_string(want_world_size) + ")");
  if (want_world_rank >= 0 && world_rank != want_world_rank)
    throw std::runtime_error("mpi: rank mismatch: MPI says this process is rank " + std::to_string(world_rank) +
                             " but CommInit." + (group_.empty() ? "rank" : "world_rank") + " is " +
                             std::to_string(want_world_rank) + " (take the rank from OMPI_COMM_WORLD_RANK)");
  timeout_ = init.timeout;
  if (group_.empty()) {
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);  // our own message space, isolated from other MPI users
  } else {
    int rc = MPI_Comm_split(MPI_COMM_WORLD, group_color(group_), init.rank, &comm_);
    if (rc != MPI_SUCCESS) throw std::runtime_error("mpi: " + who_ + ": MPI_Comm_split failed: " + mpi_error(rc));
  }
  int got_rank = 0, got_size = 0;
  MPI_Comm_rank(comm_, &got_rank);
  MPI_Comm_size(comm_, &got_size);
  if (!group_.empty() && (got_size != init.size || got_rank != init.rank)) {
    MPI_Comm_free(&comm_);
    comm_ = MPI_COMM_NULL;
    throw std::runtime_error("mpi: wrong group size: group " + group_ + " has " + std::to_string(got_size) +
                             " ranks in MPI (this one rank " + std::to_string(got_rank) + ") but " + who_ +
                             " expects " + std::to_string(init.size) + " (CommInit.size)");
  }
  rank_ = got_rank;
  size_ = got_size;
  ++g_live;
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  int* ub = nullptr;
  int flag = 0;
  MPI_Comm_get_attr(comm_, MPI_TAG_UB, &ub, &flag);
  if (flag && ub) tag_ub_ = *ub;
}

MpiCommunicator::Op MpiCommunicator::begin(const char* name) {
  if (comm_ == MPI_COMM_NULL) throw std::runtime_error(std::string("mpi: ") + name + " before init");
  if (!broken_.empty())
    throw std::runtime_error(std::string("mpi: ") + name + " on " + who_ +
                             ": communicator unusable after an earlier error: " + broken_);
  Op op{name, Clock::now()};
  progress_sends(op);
  return op;
}

bool MpiCommunicator::progress_sends(const Op& op) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    int done = 0;
    int rc = MPI_Test(&it->req, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) fail(op, "an earlier buffered send to " + peer_name(it->dst) + " failed: " + mpi_error(rc), true);
    if (done) {
      pending_bytes_ -= it->data.size();
      it = pending_.erase(it);
      continue;
    }
    if (Clock::now() >= it->deadline)
      fail(op, "an earlier buffered send to " + peer_name(it->dst) + " was not received within " +
                   std::to_string(timeout_.count()) + " ms (is " + peer_name(it->dst) + " alive and receiving?)",
           true);
    ++it;
  }
  return pending_.empty();
}

void MpiCommunicator::wait_sends(const Op& op) {
  for (long spins = 0; !progress_sends(op); ++spins) {
    if (spins > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));
    else std::this_thread::yield();
  }
}

void MpiCommunicator::end(const Op& op, uint64_t sent, uint64_t received) {
  stats_.seconds += std::chrono::duration<double>(Clock::now() - op.start).count();
  stats_.calls += 1;
  stats_.bytes_sent += sent;
  stats_.bytes_received += received;
}

void MpiCommunicator::fail(const Op& op, const std::string& what, bool broken) {
  std::string msg = std::string("mpi: ") + op.name + " on " + who_ + ": " + what;
  if (broken) broken_ = msg;
  end(op, 0, 0);
  throw std::runtime_error(msg);
}

int MpiCommunicator::checked_count(const Op& op, size_t n) const {
  if (n > size_t(INT_MAX))
    throw std::invalid_argument(std::string("mpi: ") + op.name + ": " + std::to_string(n) +
                                " elements exceed MPI's int count; split the buffer");
  return int(n);
}

void MpiCommunicator::wait(const Op& op, MPI_Request& req, int rc, int peer, const char* direction) {
  const std::string who = peer >= 0 ? std::string(direction) + " " + peer_name(peer)
                                    : "waiting for the other " + std::to_string(size_ - 1) + " rank(s)";
  if (rc != MPI_SUCCESS) fail(op, who + " failed: " + mpi_error(rc), peer < 0);
  const auto deadline = op.start + timeout_;
  int done = 0;
  for (long spins = 0;; ++spins) {
    MPI_Status status;
    rc = MPI_Test(&req, &done, &status);
    if (rc != MPI_SUCCESS) fail(op, who + " failed: " + mpi_error(rc), true);
    if (done) return;
    if (Clock::now() >= deadline) break;
    if (spins > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));  // stop burning a shared core
    else std::this_thread::yield();
  }
  const std::string msg = who + " timed out after " + std::to_string(timeout_.count()) + " ms";
  if (peer >= 0) {  // point to point: withdraw the request so the communicator stays consistent
    MPI_Cancel(&req);
    MPI_Status status;
    MPI_Wait(&req, &status);
    int cancelled = 0;
    MPI_Test_cancelled(&status, &cancelled);
    fail(op, msg + " (is " + peer_name(peer) + " alive and in the same op?)", !cancelled);
  }
  fail(op, msg + "; collectives cannot be cancelled, the communicator is now unusable", true);
}

void MpiCommunicator::send(const void* buf, size_t bytes, int dst, uint32_t tag) {
  Op op = begin("send");
  if (dst < 0 || dst >= size_ || dst == rank_)
    throw std::invalid_argument("mpi: send to rank " + std::to_string(dst) + " from rank " + std::to_string(rank_) +
                                " in a world of " + std::to_string(size_));
  if (tag > uint32_t(tag_ub_))
    throw std::invalid_argument("mpi: send tag " + std::to_string(tag) + " above MPI_TAG_UB " + std::to_string(tag_ub_));
  const int count = checked_count(op, bytes);
  for (long spins = 0; !pending_.empty() && pending_bytes_ + bytes > kMaxPendingBytes; ++spins) {  // bound memory
    progress_sends(op);
    if (spins > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  PendingSend p;
  const auto* b = static_cast<const uint8_t*>(buf);
  p.data.assign(b, b + bytes);
  p.dst = dst;
  p.deadline = op.start + timeout_;
  int rc = MPI_Isend(p.data.data(), count, MPI_BYTE, dst, int(tag), comm_, &p.req);
  if (rc != MPI_SUCCESS) fail(op, "send to " + peer_name(dst) + " failed: " + mpi_error(rc), false);
  pending_bytes_ += bytes;
  pending_.push_back(std::move(p));  // the vector's heap block (what MPI reads) does not move
  end(op, bytes, 0);
}

void MpiCommunicator::recv(void* buf, size_t bytes, int src, uint32_t tag) {
  Op op = begin("recv");
  if (src < 0 || src >= size_ || src == rank_)
    throw std::invalid_argument("mpi: recv from rank " + std::to_string(src) + " on rank " + std::to_string(rank_) +
                                " in a world of " + std::to_string(size_));
  if (tag > uint32_t(tag_ub_))
    throw std::invalid_argument("mpi: recv tag " + std::to_string(tag) + " above MPI_TAG_UB " + std::to_string(tag_ub_));
  MPI_Request req;
  int rc = MPI_Irecv(buf, checked_count(op, bytes), MPI_BYTE, src, int(tag), comm_, &req);
  wait(op, req, rc, src, "recv from");
  end(op, 0, bytes);
}

// Stats count the bytes a ring algorithm would move: 2 (n-1)/n of the buffer each way.
void MpiCommunicator::allreduce_sum_f32(float* data, size_t count) {
  Op op = begin("allreduce_f32");
  MPI_Request req;
  int rc = MPI_Iallreduce(MPI_IN_PLACE, data, checked_count(op, count), MPI_FLOAT, MPI_SUM, comm_, &req);
  wait(op, req, rc, -1, "");
  uint64_t moved = size_ > 1 ? 2 * uint64_t(size_ - 1) * count * sizeof(float) / uint64_t(size_) : 0;
  end(op, moved, moved);
}

// bf16: widen to f32, sum with MPI_FLOAT (f32 accumulation at every step), round once at the end. A user MPI_Op
// on bf16 would round after every partial sum.
void MpiCommunicator::allreduce_sum_bf16(uint16_t* data, size_t count) {
  std::vector<float> wide(count);  // [count] f32 copy of data
  for (size_t i = 0; i < count; ++i) wide[i] = kernels::bf16_to_f32(data[i]);
  allreduce_sum_f32(wide.data(), count);
  for (size_t i = 0; i < count; ++i) data[i] = kernels::f32_to_bf16(wide[i]);
}

void MpiCommunicator::allgather(const void* in, size_t bytes_per_rank, void* out) {
  Op op = begin("allgather");
  auto* o = static_cast<uint8_t*>(out);
  const void* send = (in == o + size_t(rank_) * bytes_per_rank) ? MPI_IN_PLACE : in;
  int n = checked_count(op, bytes_per_rank);
  MPI_Request req;
  int rc = MPI_Iallgather(send, n, MPI_BYTE, out, n, MPI_BYTE, comm_, &req);
  wait(op, req, rc, -1, "");
  end(op, bytes_per_rank * uint64_t(size_ - 1), bytes_per_rank * uint64_t(size_ - 1));
}

void MpiCommunicator::alltoallv(const void* send, const size_t* send_bytes, void* recv, const size_t* recv_bytes) {
  Op op = begin("alltoallv");
  std::vector<int> sc(static_cast<size_t>(size_)), sd(static_cast<size_t>(size_)), rc(static_cast<size_t>(size_)),
      rd(static_cast<size_t>(size_));
  uint64_t sent = 0, got = 0, so = 0, ro = 0;
  for (int q = 0; q < size_; ++q) {
    sc[size_t(q)] = checked_count(op, send_bytes[q]), rc[size_t(q)] = checked_count(op, recv_bytes[q]);
    sd[size_t(q)] = checked_count(op, so), rd[size_t(q)] = checked_count(op, ro);
    so += send_bytes[q], ro += recv_bytes[q];
    if (q != rank_) sent += send_bytes[q], got += recv_bytes[q];
  }
  MPI_Request req;
  int rcode = MPI_Ialltoallv(send, sc.data(), sd.data(), MPI_BYTE, recv, rc.data(), rd.data(), MPI_BYTE, comm_, &req);
  wait(op, req, rcode, -1, "");
  end(op, sent, got);
}

void MpiCommunicator::broadcast(void* buf, size_t bytes, int root) {
  Op op = begin("broadcast");
  if (root < 0 || root >= size_)
    throw std::invalid_argument("mpi: broadcast root " + std::to_string(root) + " is not a rank of a world of " +
                                std::to_string(size_));
  MPI_Request req;
  int rc = MPI_Ibcast(buf, checked_count(op, bytes), MPI_BYTE, root, comm_, &req);
  wait(op, req, rc, -1, "");
  end(op, rank_ == root ? bytes * uint64_t(size_ - 1) : 0, rank_ == root ? 0 : bytes);
}

void MpiCommunicator::barrier() {
  Op op = begin("barrier");
  wait_sends(op);  // the contract: barrier() reports every buffered send
  MPI_Request req;
  int rc = MPI_Ibarrier(comm_, &req);
  wait(op, req, rc, -1, "");
  end(op, 0, 0);
}

}  // namespace hpcinfer::mpi_comm
