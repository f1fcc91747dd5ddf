// Adapter: our KeyValueStore seen as a gloo::rendezvous::Store, so gloo's full-mesh connect can use the core's
// file or TCP store. Every wait honours a timeout and failures name the key (the store's own errors).
#pragma once

#include <gloo/rendezvous/store.h>

#include <chrono>

#include "hpcinfer/communicator.hpp"

namespace hpcinfer::gloo_comm {

class StoreAdapter : public ::gloo::rendezvous::Store {
 public:
  StoreAdapter(KeyValueStore& store, std::chrono::milliseconds timeout) : store_(store), timeout_(timeout) {}

  void set(const std::string& key, const std::vector<char>& data) override {
    store_.set(key, std::vector<uint8_t>(data.begin(), data.end()));
  }
  std::vector<char> get(const std::string& key) override {
    auto v = store_.get(key, timeout_);
    return std::vector<char>(v.begin(), v.end());
  }
  void wait(const std::vector<std::string>& keys) override { wait(keys, timeout_); }
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (const auto& key : keys) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      store_.get(key, std::max(left, std::chrono::milliseconds(1)));  // throws naming the key on timeout
    }
  }

 private:
  KeyValueStore& store_;
  std::chrono::milliseconds timeout_;
};

}  // namespace hpcinfer::gloo_comm
