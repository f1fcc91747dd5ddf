// Runs a plan's collective steps at the anchors blocks bind (the stage's Anchors). Point-to-point steps are the
// pipeline engine's; everything else the strategy put in the plan runs here, by kind:
//   allreduce_sum   in place over the step's group communicator
//   allgather_cols  [rows, sizes[me]] from every group rank -> [rows, sum(sizes)] in group-rank order
//   alltoallv       the block's per-rank payloads (exchange()), the routing's owners from sizes (owner())
//   allgather_rows  each rank's even share of the rows to every rank (gather_rows())
// A new collective kind is one case here and one in CommStep::Kind. Buffers stay in the backend's memory: the
// configuration check (core/runtime/device_check.hpp) guarantees the communicators move that memory space.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/model/blocks/block.hpp"
#include "hpcinfer/communicator.hpp"

namespace hpcinfer {

class AnchorSteps final : public Anchors {
 public:
  // groups: the communicator of every CommGroup the plan names (by name).
  AnchorSteps(const RankPlan& plan, Backend& be, std::map<std::string, Communicator*> groups);
  // Whether any anchor of this stage runs communication (then its forward pass is not recorded as a graph).
  bool any_bound() const { return !bound_.empty(); }
  int bind(const std::string& anchor) override;
  float* run(int handle, float* data, int64_t rows, int64_t cols) override;
  int group_rank(int handle) const override;
  int group_size(int handle) const override;
  int owner(int handle, int64_t index) const override;
  void exchange(int handle, const std::vector<std::vector<float>>& to, std::vector<std::vector<float>>& from) override;
  void gather_rows(int handle, float* data, int64_t n, int64_t cols) override;
  // Throws std::runtime_error naming the first collective step whose anchor nothing bound (a plan that does not
  // fit the model's blocks would otherwise silently skip its communication).
  void check_all_bound() const;
  double seconds() const { return seconds_; }  // wall time inside collectives so far

 private:
  struct Bound {
    std::string anchor;
    std::vector<const CommStep*> steps;
    DeviceBuffer staging, gathered, result;
  };
  void allgather_cols(const CommStep& s, Bound& b, float*& data, int64_t rows, int64_t& cols);
  Communicator& comm_of(const CommStep& s) const;
  const CommStep& only_step(int handle, CommStep::Kind kind) const;  // throws naming the anchor when absent

  const RankPlan& plan_;
  Backend& be_;
  std::map<std::string, Communicator*> groups_;
  std::vector<Bound> bound_;
  double seconds_ = 0;
};

}  // namespace hpcinfer
