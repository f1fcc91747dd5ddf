// Where the pipeline's first stage takes its requests from: a fixed list (`run`: every first-stage rank reads the
// same list and schedules alike) or a live queue that only the leader sees (`serve`: core/serve/request_book.hpp).
#pragma once

#include <optional>
#include <vector>

#include "core/runtime/requests.hpp"

namespace hpcinfer {

class RequestFeed {
 public:
  virtual ~RequestFeed() = default;
  // The next request to admit, or nullopt when none is ready. wait_s > 0: the engine holds nothing in flight and
  // may block up to wait_s seconds for one.
  virtual std::optional<Request> next(double wait_s) = 0;
  // True once no request will come again: the engine finishes what it holds and returns.
  virtual bool ended() const = 0;
  // Admitted requests to drop (client gone, timed out): each index returned once; unknown indices are ignored.
  virtual std::vector<int> take_cancelled() { return {}; }
};

// The requests of a list, in order.
class FixedFeed final : public RequestFeed {
 public:
  explicit FixedFeed(const std::vector<Request>& requests) : r_(requests) {}
  std::optional<Request> next(double) override {
    if (pos_ >= r_.size()) return std::nullopt;
    return r_[pos_++];
  }
  bool ended() const override { return pos_ >= r_.size(); }

 private:
  const std::vector<Request>& r_;
  size_t pos_ = 0;
};

}  // namespace hpcinfer
