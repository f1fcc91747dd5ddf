// The data-parallel front's view of its replicas (world.dp): each a full tp x pp engine whose leader serves the same
// API; replica 0 is in the front's own process, the others are reached over HTTP at the address they publish in
// the job's rendezvous store once their weights are loaded.
//
// Load of a replica = the requests the front has dispatched to it that have not finished (queued or running
// there): the front sends each request to the ready replica with the least load (ties: the one sent the fewest
// requests so far, so that requests one after another alternate), and
// answers 429 itself when every replica holds `capacity` (its slots + serve.max_waiting). Thread-safe.
#pragma once

#include <mutex>
#include <string>
#include <vector>

namespace hpcinfer::serve {

class Replicas {
 public:
  Replicas(int dp, int capacity);
  void set_ready(int replica, const std::string& address);  // "host:port"; replica 0 is local ("")
  // The least-loaded ready replica with room, its load counted; -1 when every ready replica is full or none is.
  int acquire(int requests);
  void release(int replica, int requests);
  std::string address(int replica) const;
  bool all_ready() const;
  int size() const { return int(load_.size()); }
  int capacity() const { return capacity_; }
  std::vector<int> loads() const;

 private:
  mutable std::mutex mu_;
  int capacity_;
  std::vector<int> load_;
  std::vector<long> sent_;  // requests sent so far
  std::vector<char> ready_;
  std::vector<std::string> address_;
};

}  // namespace hpcinfer::serve
