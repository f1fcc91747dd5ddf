#include "core/runtime/anchor_steps.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace hpcinfer {
namespace {
bool is_collective(CommStep::Kind k) {
  return k == CommStep::Kind::allreduce_sum || k == CommStep::Kind::allgather_cols || k == CommStep::Kind::alltoallv ||
         k == CommStep::Kind::allgather_rows;
}
}  // namespace

AnchorSteps::AnchorSteps(const RankPlan& plan, Backend& be, std::map<std::string, Communicator*> groups)
    : plan_(plan), be_(be), groups_(std::move(groups)) {
  for (const CommStep& s : plan_.steps) {
    if (!is_collective(s.kind)) continue;
    Communicator& c = comm_of(s);
    if (c.memory_space() != be_.memory_space())
      throw std::runtime_error(std::string("plan step ") + comm_step_name(s.kind) + " at " + s.anchor + ": the " +
                               memory_space_name(c.memory_space()) + " transport cannot move the " + be_.name() +
                               " backend's " + memory_space_name(be_.memory_space()) + " memory");
  }
}

Communicator& AnchorSteps::comm_of(const CommStep& s) const {
  auto it = groups_.find(s.group);
  if (it == groups_.end() || !it->second)
    throw std::runtime_error(std::string("plan step ") + comm_step_name(s.kind) + " at " + s.anchor + " names group '" +
                             s.group + "', which this rank has no communicator for");
  return *it->second;
}

int AnchorSteps::bind(const std::string& anchor) {
  Bound b;
  b.anchor = anchor;
  for (const CommStep& s : plan_.steps)
    if (s.anchor == anchor && is_collective(s.kind)) b.steps.push_back(&s);
  if (b.steps.empty()) return -1;
  bound_.push_back(std::move(b));
  return int(bound_.size()) - 1;
}

void AnchorSteps::check_all_bound() const {
  for (const CommStep& s : plan_.steps) {
    if (!is_collective(s.kind)) continue;
    const bool found = std::any_of(bound_.begin(), bound_.end(), [&](const Bound& b) { return b.anchor == s.anchor; });
    if (!found)
      throw std::runtime_error(std::string("plan step ") + comm_step_name(s.kind) + " at anchor " + s.anchor +
                               ": no block of this stage has that anchor (the strategy's plan does not fit the model)");
  }
}

float* AnchorSteps::run(int handle, float* data, int64_t rows, int64_t cols) {
  if (handle < 0) return data;
  Bound& b = bound_.at(size_t(handle));
  const auto t0 = std::chrono::steady_clock::now();
  be_.range_push(b.anchor.c_str());
  for (const CommStep* s : b.steps) {
    if (s->kind == CommStep::Kind::allreduce_sum)
      comm_of(*s).allreduce_sum_f32(data, size_t(rows * cols));
    else if (s->kind == CommStep::Kind::allgather_cols)
      allgather_cols(*s, b, data, rows, cols);
    else
      throw std::logic_error(std::string("anchor ") + b.anchor + ": step " + comm_step_name(s->kind) +
                             " is not run by run()");
  }
  be_.range_pop();
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return data;
}

const CommStep& AnchorSteps::only_step(int handle, CommStep::Kind kind) const {
  if (handle >= 0)
    for (const CommStep* s : bound_.at(size_t(handle)).steps)
      if (s->kind == kind) return *s;
  throw std::logic_error(std::string("anchor has no ") + comm_step_name(kind) + " step in the plan");
}

int AnchorSteps::group_rank(int handle) const { return comm_of(only_step(handle, CommStep::Kind::alltoallv)).rank(); }
int AnchorSteps::group_size(int handle) const { return comm_of(only_step(handle, CommStep::Kind::alltoallv)).size(); }

int AnchorSteps::owner(int handle, int64_t index) const {
  const CommStep& s = only_step(handle, CommStep::Kind::alltoallv);
  int64_t first = 0;
  for (size_t r = 0; r < s.sizes.size(); ++r) {
    if (index < first + s.sizes[r]) return int(r);
    first += s.sizes[r];
  }
  throw std::runtime_error("plan step alltoallv at " + s.anchor + ": no group rank holds member " + std::to_string(index));
}

// Two personalised all-to-alls: the byte counts, then the payloads (host memory: the transports checked at
// construction move the backend's memory space, and this routing runs on host staging; a device backend's transport
// would need device staging here).
void AnchorSteps::exchange(int handle, const std::vector<std::vector<float>>& to, std::vector<std::vector<float>>& from) {
  const CommStep& s = only_step(handle, CommStep::Kind::alltoallv);
  Communicator& c = comm_of(s);
  if (c.memory_space() != MemorySpace::host)
    throw std::runtime_error("plan step alltoallv at " + s.anchor + ": token routing needs a host-memory transport");
  const auto t0 = std::chrono::steady_clock::now();
  const size_t n = size_t(c.size());
  std::vector<uint64_t> counts(n), got(n);
  std::vector<size_t> eight(n, sizeof(uint64_t));
  for (size_t r = 0; r < n; ++r) counts[r] = to.at(r).size() * sizeof(float);
  c.alltoallv(counts.data(), eight.data(), got.data(), eight.data());
  std::vector<float> send, recv;
  std::vector<size_t> sb(n), rb(n);
  for (size_t r = 0; r < n; ++r) {
    send.insert(send.end(), to[r].begin(), to[r].end());
    sb[r] = size_t(counts[r]), rb[r] = size_t(got[r]);
  }
  size_t total = 0;
  for (size_t x : rb) total += x;
  recv.resize(total / sizeof(float));
  c.alltoallv(send.data(), sb.data(), recv.data(), rb.data());
  from.assign(n, {});
  size_t at = 0;
  for (size_t r = 0; r < n; ++r) {
    from[r].assign(recv.begin() + std::ptrdiff_t(at), recv.begin() + std::ptrdiff_t(at + rb[r] / sizeof(float)));
    at += rb[r] / sizeof(float);
  }
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The even shares of [0, n), padded to the largest, through one allgather; then each share copied into place.
void AnchorSteps::gather_rows(int handle, float* data, int64_t n, int64_t cols) {
  if (handle < 0) return;
  Bound& b = bound_.at(size_t(handle));
  const CommStep* step = nullptr;
  for (const CommStep* s : b.steps)
    if (s->kind == CommStep::Kind::allgather_rows) step = s;
  if (!step) return;
  Communicator& c = comm_of(*step);
  const auto t0 = std::chrono::steady_clock::now();
  const int G = c.size(), g = c.rank();
  auto share = [&](int r) { return std::pair<int64_t, int64_t>{n * r / G, n * (r + 1) / G}; };
  const int64_t most = (n + G - 1) / G;
  const size_t slab = size_t(most * cols) * sizeof(float);
  b.staging.reserve(be_, std::max<size_t>(slab, 4));
  const auto [lo, hi] = share(g);
  if (hi > lo) be_.copy(b.staging.get(), data + lo * cols, size_t((hi - lo) * cols) * sizeof(float));
  b.gathered.reserve(be_, std::max<size_t>(slab * size_t(G), 4));
  c.allgather(b.staging.get(), slab, b.gathered.get());
  for (int r = 0; r < G; ++r) {
    const auto [a, e] = share(r);
    if (r != g && e > a)
      be_.copy(data + a * cols, static_cast<uint8_t*>(b.gathered.get()) + size_t(r) * slab, size_t((e - a) * cols) * sizeof(float));
  }
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Every rank contributes [rows, maxc] (its columns, zero-padded to the widest rank's), the communicator's equal-sized
// all-gather gives [ranks][rows][maxc], and the columns are put side by side: [rows, sum(sizes)].
void AnchorSteps::allgather_cols(const CommStep& s, Bound& b, float*& data, int64_t rows, int64_t& cols) {
  Communicator& c = comm_of(s);
  const int me = c.rank(), n = int(s.sizes.size());
  if (n != c.size() || s.sizes[size_t(me)] != cols)
    throw std::runtime_error("plan step allgather_cols at " + s.anchor + ": this rank holds " + std::to_string(cols) +
                             " columns, the plan says " + std::to_string(me < n ? s.sizes[size_t(me)] : -1) +
                             " of a group of " + std::to_string(n));
  const int64_t maxc = *std::max_element(s.sizes.begin(), s.sizes.end());
  const size_t slab = size_t(rows * maxc) * sizeof(float);
  const float* send = data;
  if (cols != maxc) {  // pad each row
    b.staging.reserve(be_, slab);
    for (int64_t r = 0; r < rows; ++r)
      be_.copy(b.staging.f32() + r * maxc, data + r * cols, size_t(cols) * sizeof(float));
    send = b.staging.f32();
  }
  b.gathered.reserve(be_, slab * size_t(n));
  c.allgather(send, slab, b.gathered.get());
  int64_t total = 0;
  for (int64_t w : s.sizes) total += w;
  b.result.reserve(be_, size_t(rows * total) * sizeof(float));
  int64_t offset = 0;
  for (int k = 0; k < n; ++k) {
    const float* part = b.gathered.f32() + int64_t(k) * rows * maxc;
    for (int64_t r = 0; r < rows; ++r)
      be_.copy(b.result.f32() + r * total + offset, part + r * maxc, size_t(s.sizes[size_t(k)]) * sizeof(float));
    offset += s.sizes[size_t(k)];
  }
  data = b.result.f32();
  cols = total;
}

}  // namespace hpcinfer
