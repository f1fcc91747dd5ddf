// Between the HTTP threads and the engine: the live request feed of `serve` (core/runtime/request_feed.hpp).
//
// An HTTP request submits its engine requests (one per choice) and gets a Channel; the engine takes them from a
// bounded queue into its batch slots (continuous batching: at its next step), and deliver() routes each step's
// token events to their channels. Cancelling a channel drops its queued requests at once and asks the engine to
// drop the running ones (their slots free at the group's next batch). Load = requests running + waiting: the
// measure the data-parallel front balances on. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/runtime/request_feed.hpp"
#include "core/serve/openai_api.hpp"
#include "core/serve/serve_metrics.hpp"

namespace hpcinfer::serve {

using Clock = std::chrono::steady_clock;

class Channel {
 public:
  struct Item {
    int choice;
    TokenEvent event;
  };
  // The events that arrived (in order), waiting until `until` for at least one; empty on timeout or when done.
  std::vector<Item> wait(Clock::time_point until);
  bool done() const;             // every choice finished, or failed
  std::string error() const;     // non-empty: the engine failed (the message)

 private:
  friend class RequestBook;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> items_;
  std::map<int, int> choice_of_;  // request index -> choice
  int open_ = 0;                  // choices not finished
  std::string error_;
};

// The 400 for one request of more choices than `capacity` (slots + queue places) could ever hold: a 429 would send
// its client retrying forever. The request book's rule, and the data-parallel front's for every replica.
ApiError never_fits(int choices, int capacity);

class RequestBook final : public RequestFeed {
 public:
  RequestBook(int slots, int max_waiting, ServeMetrics& metrics);
  // Queues one HTTP request's engine requests (indices assigned here; request c is choice c). Throws ApiError 429
  // when the queue cannot take them all now, 400 when they could never fit (more than slots + max_waiting), 503
  // once closed.
  std::shared_ptr<Channel> submit(std::vector<Request> requests);
  // Drops the channel's requests that have not finished (reason: cancelled | timeout, for the metrics).
  void cancel(const std::shared_ptr<Channel>& ch, const std::string& reason);

  // The engine's side (RequestFeed), and its events.
  std::optional<Request> next(double wait_s) override;
  bool ended() const override;
  std::vector<int> take_cancelled() override;
  void deliver(const std::vector<TokenEvent>& events);
  // No new requests (SIGTERM): ended() once the queue is empty; the running ones finish.
  void close();
  // The engine stopped with an error: every open channel ends with it.
  void fail_all(const std::string& why);
  int running() const;
  int waiting() const;
  int load() const { return running() + waiting(); }

 private:
  struct Entry {
    std::shared_ptr<Channel> ch;
    Clock::time_point arrived;
    double first_token_s = -1;
    int generated = 0;
    int prompt_tokens = 0;
  };
  void update_load();  // metrics gauges; mu_ held
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int slots_, max_waiting_;
  ServeMetrics& metrics_;
  std::deque<Request> queue_;
  std::map<int, Entry> entries_;  // every request not finished: queued or running
  std::set<int> running_;
  std::vector<int> cancelled_;
  int next_index_ = 0;
  bool closed_ = false;
};

}  // namespace hpcinfer::serve
