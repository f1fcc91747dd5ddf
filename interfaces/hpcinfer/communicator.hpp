// Communicator (transport) contract: how ranks exchange bytes once they have found each other.
//
// Rendezvous (how ranks find each other) is separate: the core hands the plugin a KeyValueStore (file- or TCP-backed,
// see core/rendezvous) and the plugin uses it to exchange addresses / unique ids. MPI may ignore the store.
//
// Threading and blocking
// - A Communicator is used by ONE thread at a time (the rank's engine thread). Calls are not re-entrant.
// - Every call here blocks until it is complete on this rank or until the timeout given in CommInit passes; on
//   timeout or on a peer that died it throws std::runtime_error whose message names the peer rank(s) involved and
//   the operation (e.g. "gloo: recv from rank 1 timed out after 30000 ms").
// - Collectives must be called by every rank of the communicator in the same order.
// Memory: buffers live in memory_space(): host memory for gloo and mpi, CUDA device memory for nccl. The caller owns
// every buffer; the communicator never keeps a pointer after a call returns.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "hpcinfer/tensor.hpp"

namespace hpcinfer {

// Rendezvous store: a string -> bytes map shared by all ranks of a job. Implemented by the core (FileStore on a
// shared path, a TCP store hosted by rank 0). Thread-safe.
class KeyValueStore {
 public:
  virtual ~KeyValueStore() = default;
  virtual void set(const std::string& key, const std::vector<uint8_t>& value) = 0;
  // Blocks until `key` is set by some rank; throws std::runtime_error naming the key after `timeout`.
  virtual std::vector<uint8_t> get(const std::string& key, std::chrono::milliseconds timeout) = 0;
  // Non-blocking: whether `key` is set now.
  virtual bool check(const std::string& key) = 0;
};

struct CommInit {
  int rank = 0;
  int size = 1;
  KeyValueStore* store = nullptr;            // not owned; outlives the communicator
  std::string prefix;                        // unique per job, prefixes every store key
  std::chrono::milliseconds timeout{60000};  // for every blocking call, including the connect
  std::string interface_name;                // network interface to bind (gloo), empty = from hostname
  std::string hostname;                      // address other ranks use to reach this one, empty = auto
  int device = -1;                           // GPU index (nccl); -1 = none
  std::string group;  // "" = the whole world; otherwise a sub-communicator name such as "tp.stage0": rank/size
                      // are then the rank within the group and the group's size, and every rank of the world
                      // creates its group communicator at the same point (MPI: collective MPI_Comm_split)
  int world_rank = -1, world_size = -1;  // this rank in the whole world; the caller fills them for groups
};

// Counters a communicator keeps since construction, for the metrics bundle.
struct CommStats {
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  double seconds = 0.0;  // wall time spent inside communicator calls
  uint64_t calls = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  // Connects to every peer. Blocks until all ranks called init or the timeout passes. Called once, first.
  virtual void init(const CommInit& init) = 0;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual MemorySpace memory_space() const = 0;

  // Point to point. `tag` separates streams of messages between the same pair (e.g. micro-batch ids).
  // send() is BUFFERED (like MPI_Bsend): it copies the bytes out and returns once `buf` may be reused, without
  // waiting for the matching recv; messages to one peer with one tag arrive in the order they were sent. This is
  // what lets pipeline stages send forward and backward at once without deadlock. An error of a send still in
  // flight is reported by a later call (or barrier()); barrier() and the destructor wait for all of them.
  virtual void send(const void* buf, size_t bytes, int dst, uint32_t tag) = 0;
  // recv() blocks until the whole message has arrived (or the timeout passes).
  virtual void recv(void* buf, size_t bytes, int src, uint32_t tag) = 0;

  // In-place element-wise sum over all ranks. bf16 values (raw uint16 bit patterns) are accumulated in f32.
  virtual void allreduce_sum_f32(float* data, size_t count) = 0;
  virtual void allreduce_sum_bf16(uint16_t* data, size_t count) = 0;

  // out = concatenation over ranks 0..size-1 of each rank's `bytes_per_rank` bytes of `in`.
  virtual void allgather(const void* in, size_t bytes_per_rank, void* out) = 0;
  // Personalised all-to-all: `send` holds send_bytes[0] bytes for rank 0, then send_bytes[1] for rank 1, ...;
  // `recv` gets recv_bytes[0] bytes from rank 0, then from rank 1, ... (this rank's own block is copied). Both arrays
  // have size() entries; every pair must agree (what r sends to q is what q expects from r). Zero-byte blocks are fine.
  virtual void alltoallv(const void* send, const size_t* send_bytes, void* recv, const size_t* recv_bytes) = 0;
  virtual void broadcast(void* buf, size_t bytes, int root) = 0;
  virtual void barrier() = 0;

  virtual CommStats stats() const = 0;
};

}  // namespace hpcinfer
