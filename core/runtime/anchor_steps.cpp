#include "core/runtime/anchor_steps.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace hpcinfer {
namespace {
bool is_collective(CommStep::Kind k) {
  return k == CommStep::Kind::allreduce_sum || k == CommStep::Kind::allgather_cols;
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
  for (const CommStep* s : b.steps) {
    if (s->kind == CommStep::Kind::allreduce_sum)
      comm_of(*s).allreduce_sum_f32(data, size_t(rows * cols));
    else
      allgather_cols(*s, b, data, rows, cols);
  }
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return data;
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
