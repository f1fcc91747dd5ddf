// Block kinds: the units a model is built from. Each kind (an attention variant, an FFN variant) is one file in this
// folder plus one registration line in block_registry.cpp. A kind
//   - declares, from its layer's spec, its tensors (logical shapes, canonical names, how tensor parallelism may cut
//     them) and its anchors (where partial results of a cut must be combined) -- strategies read only these;
//   - says what memory it needs per token (the planner's figures, core/model/cost_model.hpp);
//   - builds, on one rank, a Block that holds its packed shards (and KV cache) and runs its forward pass in Backend
//     ops only. It never sees ranks, transports or packing: shard ranges come from the plan, communication happens
//     at its anchors (the stage runs the plan's steps there), matmuls go through the weight format.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hpcinfer/backend.hpp"
#include "hpcinfer/model.hpp"
#include "hpcinfer/strategy.hpp"
#include "hpcinfer/weight_format.hpp"

namespace hpcinfer {

// A batch as the blocks see it: n tokens, token i of KV-cache slot slot[i] at position pos[i] (backend memory).
struct StageBatch {
  int64_t n = 0;
  const int* slot = nullptr;  // [n]
  const int* pos = nullptr;   // [n]
  const int* host_slot = nullptr;  // [n] the same in host memory (blocks whose work follows the sequences: palu)
  const int* host_pos = nullptr;   // [n]
};

// A backend buffer owned by its holder (freed with the backend that allocated it).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Backend& be, size_t bytes) : be_(&be), p_(be.alloc(bytes)), bytes_(bytes) {}
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept : be_(o.be_), p_(o.p_), bytes_(o.bytes_) { o.p_ = nullptr, o.bytes_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) reset(), be_ = o.be_, p_ = o.p_, bytes_ = o.bytes_, o.p_ = nullptr, o.bytes_ = 0;
    return *this;
  }
  float* f32() const { return static_cast<float*>(p_); }
  int* i32() const { return static_cast<int*>(p_); }
  void* get() const { return p_; }
  size_t bytes() const { return bytes_; }
  // At least `bytes`; the contents are lost when it grows.
  void reserve(Backend& be, size_t bytes) {
    if (bytes_ < bytes || !p_) *this = DeviceBuffer(be, std::max<size_t>(bytes, 64));
  }

 private:
  void reset() {
    if (p_) be_->free(p_);
    p_ = nullptr;
  }
  Backend* be_ = nullptr;
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

// Scratch shared by the blocks of one stage (they run one after another): buffer k of at least `floats` floats.
// Blocks use slots 0, 1, 2, ... for their temporaries; contents do not survive another block's forward.
class Workspace {
 public:
  explicit Workspace(Backend& be) : be_(be) {}
  float* get(size_t slot, size_t floats) {
    if (bufs_.size() <= slot) bufs_.resize(slot + 1);
    bufs_[slot].reserve(be_, floats * sizeof(float));
    return bufs_[slot].f32();
  }

 private:
  Backend& be_;
  std::vector<DeviceBuffer> bufs_;
};

// Where a block's anchors' communication runs (core/runtime/anchor_steps.hpp implements it from the plan).
class Anchors {
 public:
  virtual ~Anchors() = default;
  // A handle for `anchor` (-1 when the plan runs nothing there). Called while building.
  virtual int bind(const std::string& anchor) = 0;
  // Runs the plan's steps at `handle` on data[rows, cols] (backend memory) and returns where the combined result is:
  // `data` itself for sums and when nothing runs; a buffer of [rows, all columns] for concat_cols.
  virtual float* run(int handle, float* data, int64_t rows, int64_t cols) = 0;
  // Route anchors (a plan's alltoallv step there; token routing to the holders of a unit's members):
  // this rank's place among the ranks that share the routed unit out,
  virtual int group_rank(int handle) const = 0;
  virtual int group_size(int handle) const = 0;
  // which of them holds member `index` of the unit (an expert),
  virtual int owner(int handle, int64_t index) const = 0;
  // and the exchange: to[r] goes to group rank r, from[r] arrives from it (host memory; float payloads).
  virtual void exchange(int handle, const std::vector<std::vector<float>>& to, std::vector<std::vector<float>>& from) = 0;
  // concat_rows anchors: data[n, cols] holds valid rows only in this rank's share of [0, n) (rows [n g / G,
  // n (g + 1) / G) for group rank g of G); afterwards every share is filled. Nothing runs without a step there.
  virtual void gather_rows(int handle, float* data, int64_t n, int64_t cols) = 0;
};

// What a block is built from on one rank.
class BlockBuilder {
 public:
  virtual ~BlockBuilder() = default;
  virtual const ModelDesc& model() const = 0;
  virtual Backend& backend() = 0;
  virtual Anchors& anchors() = 0;
  virtual Workspace& workspace() = 0;
  virtual int slots() const = 0;    // sequences the KV cache holds
  virtual int max_ctx() const = 0;  // positions per sequence
  // The plan's shard of tensor `name` (throws naming the tensor when the plan holds none).
  virtual const WeightShard& shard(const std::string& name) const = 0;
  // Whether the plan gives this rank any of tensor `name` (expert parallelism leaves other ranks' experts out).
  virtual bool holds(const std::string& name) const = 0;
  // That shard packed by the weight format on the backend / as an f32 vector on the backend (norms, biases).
  virtual std::unique_ptr<PackedMatrix> matrix(const std::string& name) = 0;
  // Rows [sub.begin, sub.end) of that shard (relative to the shard), packed alone: a per-head piece of a matrix.
  virtual std::unique_ptr<PackedMatrix> matrix_rows(const std::string& name, Range sub) = 0;
  virtual DeviceBuffer vector(const std::string& name) = 0;
  // That shard as a plain f32 [rows, cols] matrix on the backend (small matrices every rank keeps exact: routers).
  virtual DeviceBuffer f32_matrix(const std::string& name) = 0;
  // RoPE tables for this spec and head size, shared by every block that asks for the same (backend memory).
  virtual RopeTables rope_tables(const RopeSpec& spec, int64_t head_dim) = 0;
};

// One block of one layer on one rank.
class Block {
 public:
  virtual ~Block() = default;
  // x[n, dim] (backend memory), in place: x += f(rmsnorm(x)).
  virtual void forward(float* x, const StageBatch& b) = 0;
  virtual size_t weight_bytes() const = 0;  // packed matrices and vectors
  virtual size_t cache_bytes() const = 0;   // KV cache
  // Whether forward() issues backend ops only (no copies to the host, no communication): then a device backend
  // may record it once and replay it (Backend::run_recorded).
  virtual bool recordable() const { return true; }
};

class BlockKind {
 public:
  virtual ~BlockKind() = default;
  virtual std::string name() const = 0;
  // Throws std::invalid_argument naming the field when layer `layer`'s spec cannot run with this kind.
  virtual void validate(const ModelDesc& m, int layer) const = 0;
  // Appends this layer's tensors and anchors, in the order a forward pass uses them.
  virtual void declare(const ModelDesc& m, int layer, ModelLayout& out) const = 0;
  // Bytes of cache per token this rank keeps for the layer (0 for kinds without a cache), given its plan.
  virtual double cache_bytes_per_token(const ModelDesc& m, int layer, const RankPlan& plan) const = 0;
  // f32 scratch values per token of the forward pass on this rank, per Workspace slot it uses (slot k = entry k):
  // the planner's activation figure (blocks share slots, so a stage needs the largest of each slot).
  virtual std::vector<double> scratch_per_token(const ModelDesc& m, int layer, const RankPlan& plan) const = 0;
  virtual std::unique_ptr<Block> build(BlockBuilder& b, int layer) const = 0;
};

// Rows of `tensor` on a rank, read from its plan (`whole` when the plan holds no shard of it): a kind's local sizes.
inline int64_t plan_rows(const RankPlan& p, const std::string& tensor, int64_t whole) {
  const WeightShard* s = p.shard(tensor);
  return s ? s->rows.size() : whole;
}

// The registered kinds (block_registry.cpp). Throws std::invalid_argument "unknown <role> block kind 'x' (supported:
// ...)" for an unknown name. role: "attention" or "ffn".
const BlockKind& block_kind(const std::string& role, const std::string& name);
std::vector<std::string> block_kind_names(const std::string& role);

}  // namespace hpcinfer
