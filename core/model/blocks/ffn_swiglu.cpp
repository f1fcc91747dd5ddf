// FFN kind "swiglu": the Llama feed-forward block.
//   xn = rmsnorm(x, ffn_norm)                       [n, dim]
//   h = silu(w_gate xn) * (w_up xn)                 [n, ffn_local]
//   x += w_down h                                   [n, dim]; anchor layers.{i}.ffn.out (partial over ffn rows)
// Tensor parallelism: w_gate/w_up rows and w_down columns by FFN rows (unit "ffn").
#include <stdexcept>

#include "core/model/blocks/block.hpp"
#include "core/model/blocks/block_registry.hpp"

namespace hpcinfer {
namespace {

using Axis = ShardRule::Axis;

class SwigluBlock final : public Block {
 public:
  SwigluBlock(BlockBuilder& b, int layer) : be_(b.backend()), ws_(b.workspace()), anchors_(b.anchors()) {
    dim_ = b.model().dim;
    eps_ = b.model().norm_eps;
    local_ = b.shard(layer_tensor(layer, "w_gate")).rows.size();
    ffn_norm_ = b.vector(layer_tensor(layer, "ffn_norm"));
    w_gate_ = b.matrix(layer_tensor(layer, "w_gate"));
    w_up_ = b.matrix(layer_tensor(layer, "w_up"));
    w_down_ = b.matrix(layer_tensor(layer, "w_down"));
    out_anchor_ = anchors_.bind(layer_tensor(layer, "ffn.out"));
  }

  void forward(float* x, const StageBatch& b) override {
    const int64_t n = b.n;
    float* xn = ws_.get(0, size_t(n * dim_));
    float* gate = ws_.get(1, size_t(n * local_));
    float* up = ws_.get(2, size_t(n * local_));
    float* proj = ws_.get(3, size_t(n * dim_));
    be_.rmsnorm(x, ffn_norm_.f32(), n, dim_, eps_, xn);
    w_gate_->matmul(xn, n, gate);  // [n, ffn_local]
    w_up_->matmul(xn, n, up);      // [n, ffn_local]
    be_.swiglu(gate, up, n * local_, gate);
    w_down_->matmul(gate, n, proj);  // [n, dim]: a partial sum when the FFN rows are split
    be_.add(x, anchors_.run(out_anchor_, proj, n, dim_), n * dim_);
  }
  size_t weight_bytes() const override {
    return w_gate_->bytes() + w_up_->bytes() + w_down_->bytes() + ffn_norm_.bytes();
  }
  size_t cache_bytes() const override { return 0; }

 private:
  Backend& be_;
  Workspace& ws_;
  Anchors& anchors_;
  int64_t dim_ = 0, local_ = 0;
  float eps_ = 0;
  DeviceBuffer ffn_norm_;                        // [dim]
  std::unique_ptr<PackedMatrix> w_gate_, w_up_;  // [ffn_local, dim]
  std::unique_ptr<PackedMatrix> w_down_;         // [dim, ffn_local]
  int out_anchor_ = -1;
};

class SwigluKind final : public BlockKind {
 public:
  std::string name() const override { return "swiglu"; }
  void validate(const ModelDesc& m, int layer) const override {
    const int64_t h = m.layers[size_t(layer)].ffn.hidden_dim;
    if (h <= 0)
      throw std::invalid_argument("layer " + std::to_string(layer) + " ffn: hidden_dim: must be positive, got " +
                                  std::to_string(h));
  }
  void declare(const ModelDesc& m, int i, ModelLayout& out) const override {
    const int64_t H = m.layers[size_t(i)].ffn.hidden_dim, D = m.dim;
    out.tensors.push_back({layer_tensor(i, "ffn_norm"), i, 1, D, {}});
    out.tensors.push_back({layer_tensor(i, "w_gate"), i, H, D, {Axis::rows, "ffn", 1}});
    out.tensors.push_back({layer_tensor(i, "w_up"), i, H, D, {Axis::rows, "ffn", 1}});
    out.tensors.push_back({layer_tensor(i, "w_down"), i, D, H, {Axis::cols, "ffn", 1}});
    out.anchors.push_back({layer_tensor(i, "ffn.out"), i, AnchorDecl::Combine::sum, {"ffn"}});
  }
  double cache_bytes_per_token(const ModelDesc&, int, const RankPlan&) const override { return 0; }
  std::vector<double> scratch_per_token(const ModelDesc& m, int i, const RankPlan& p) const override {
    const WeightShard* s = p.shard(layer_tensor(i, "w_gate"));
    const double local = double(s ? s->rows.size() : m.layers[size_t(i)].ffn.hidden_dim);
    return {double(m.dim), local, local, double(m.dim)};  // the forward's slots: xn, gate, up, proj
  }
  std::unique_ptr<Block> build(BlockBuilder& b, int layer) const override {
    return std::make_unique<SwigluBlock>(b, layer);
  }
};

}  // namespace

const BlockKind& swiglu_ffn_kind() {
  static const SwigluKind kind;
  return kind;
}

}  // namespace hpcinfer
