#include "core/serve/replicas.hpp"

namespace hpcinfer::serve {

Replicas::Replicas(int dp, int capacity)
    : capacity_(capacity), load_(size_t(dp), 0), sent_(size_t(dp), 0), ready_(size_t(dp), 0), address_(size_t(dp)) {}

void Replicas::set_ready(int replica, const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  ready_.at(size_t(replica)) = 1;
  address_.at(size_t(replica)) = address;
}

int Replicas::acquire(int requests) {
  std::lock_guard<std::mutex> lock(mu_);
  int best = -1;
  for (int r = 0; r < int(load_.size()); ++r)
    if (ready_[size_t(r)] && load_[size_t(r)] + requests <= capacity_ &&
        (best < 0 || load_[size_t(r)] < load_[size_t(best)] ||
         (load_[size_t(r)] == load_[size_t(best)] && sent_[size_t(r)] < sent_[size_t(best)])))
      best = r;
  if (best >= 0) {
    load_[size_t(best)] += requests;
    sent_[size_t(best)] += requests;
  }
  return best;
}

void Replicas::release(int replica, int requests) {
  std::lock_guard<std::mutex> lock(mu_);
  load_.at(size_t(replica)) -= requests;
}

std::string Replicas::address(int replica) const {
  std::lock_guard<std::mutex> lock(mu_);
  return address_.at(size_t(replica));
}

bool Replicas::all_ready() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (char r : ready_)
    if (!r) return false;
  return true;
}

std::vector<int> Replicas::loads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return load_;
}

}  // namespace hpcinfer::serve
