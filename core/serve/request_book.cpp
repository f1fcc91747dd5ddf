#include "core/serve/request_book.hpp"

#include <algorithm>

#include "core/serve/openai_api.hpp"

namespace hpcinfer::serve {

std::vector<Channel::Item> Channel::wait(Clock::time_point until) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_until(lock, until, [&] { return !items_.empty() || open_ == 0 || !error_.empty(); });
  std::vector<Item> out(std::make_move_iterator(items_.begin()), std::make_move_iterator(items_.end()));
  items_.clear();
  return out;
}

bool Channel::done() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_ == 0 || !error_.empty();
}

std::string Channel::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

ApiError never_fits(int choices, int capacity) {
  return ApiError(400,
                  std::to_string(choices) + " choices (prompts x n) in one request; a replica holds at most " +
                      std::to_string(capacity) + " at once (batching.batch_size + serve.max_waiting)",
                  "n");
}

RequestBook::RequestBook(int slots, int max_waiting, ServeMetrics& metrics)
    : slots_(slots), max_waiting_(max_waiting), metrics_(metrics) {}

void RequestBook::update_load() { metrics_.set_load(int(running_.size()), int(queue_.size())); }

std::shared_ptr<Channel> RequestBook::submit(std::vector<Request> requests) {
  auto ch = std::make_shared<Channel>();
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) {
    metrics_.request_failed("rejected");
    throw ApiError(503, "the server is shutting down", "", "server_error");
  }
  if (int(requests.size()) > slots_ + max_waiting_) {
    metrics_.request_failed("rejected");
    throw never_fits(int(requests.size()), slots_ + max_waiting_);
  }
  // Free slots take requests at the engine's next step; beyond them the queue holds max_waiting.
  const int free_slots = std::max(0, slots_ - int(running_.size()));
  if (int(queue_.size() + requests.size()) > max_waiting_ + free_slots) {
    metrics_.request_failed("rejected");
    throw ApiError(429,
                   "the server is busy: " + std::to_string(running_.size()) + " requests running, " +
                       std::to_string(queue_.size()) + " waiting (serve.max_waiting: " +
                       std::to_string(max_waiting_) + "); retry later",
                   "", "rate_limit_error");
  }
  const Clock::time_point now = Clock::now();
  ch->open_ = int(requests.size());
  for (size_t c = 0; c < requests.size(); ++c) {
    Request& r = requests[c];
    r.index = next_index_++;
    if (r.id.empty()) r.id = std::to_string(r.index);
    ch->choice_of_[r.index] = int(c);
    entries_[r.index] = Entry{ch, now, -1, 0, int(r.prompt_ids.size())};
    queue_.push_back(std::move(r));
  }
  update_load();
  cv_.notify_all();
  return ch;
}

void RequestBook::cancel(const std::shared_ptr<Channel>& ch, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int> mine;
  {
    std::lock_guard<std::mutex> cl(ch->mu_);
    for (const auto& [index, choice] : ch->choice_of_)
      if (entries_.count(index)) mine.push_back(index);
    ch->open_ = 0;
    ch->cv_.notify_all();
  }
  for (int index : mine) {
    entries_.erase(index);
    metrics_.request_failed(reason);
    auto q = std::find_if(queue_.begin(), queue_.end(), [&](const Request& r) { return r.index == index; });
    if (q != queue_.end()) queue_.erase(q);
    else if (running_.erase(index)) cancelled_.push_back(index);
  }
  update_load();
}

std::optional<Request> RequestBook::next(double wait_s) {
  std::unique_lock<std::mutex> lock(mu_);
  if (queue_.empty() && wait_s > 0)
    cv_.wait_for(lock, std::chrono::duration<double>(wait_s), [&] { return !queue_.empty() || closed_; });
  if (queue_.empty()) return std::nullopt;
  Request r = std::move(queue_.front());
  queue_.pop_front();
  running_.insert(r.index);
  update_load();
  return r;
}

bool RequestBook::ended() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_ && queue_.empty();
}

std::vector<int> RequestBook::take_cancelled() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int> out;
  out.swap(cancelled_);
  return out;
}

void RequestBook::deliver(const std::vector<TokenEvent>& events) {
  std::lock_guard<std::mutex> lock(mu_);
  const Clock::time_point now = Clock::now();
  for (const TokenEvent& e : events) {
    auto it = entries_.find(e.request);
    if (it == entries_.end()) continue;  // cancelled meanwhile
    Entry& en = it->second;
    const double t = std::chrono::duration<double>(now - en.arrived).count();
    if (e.token >= 0) {
      if (en.first_token_s < 0) en.first_token_s = t;
      ++en.generated;
    }
    {
      std::lock_guard<std::mutex> cl(en.ch->mu_);
      en.ch->items_.push_back({en.ch->choice_of_.at(e.request), e});
      if (e.finished) --en.ch->open_;
      en.ch->cv_.notify_all();
    }
    if (e.finished) {
      metrics_.request_done(e.finish_reason, en.prompt_tokens, en.generated, en.first_token_s, t);
      running_.erase(e.request);
      entries_.erase(it);
    }
  }
  update_load();
}

void RequestBook::close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

void RequestBook::fail_all(const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  for (auto& [index, en] : entries_) {
    std::lock_guard<std::mutex> cl(en.ch->mu_);
    en.ch->error_ = why;
    en.ch->cv_.notify_all();
  }
  entries_.clear();
  queue_.clear();
  running_.clear();
  cv_.notify_all();
}

int RequestBook::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return int(running_.size());
}

int RequestBook::waiting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return int(queue_.size());
}

}  // namespace hpcinfer::serve
