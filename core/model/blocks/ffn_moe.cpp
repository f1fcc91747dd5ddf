// FFN kind "moe": routed experts (Mixtral, Qwen3-MoE, gpt-oss, DeepSeek-V3), optionally with a shared expert.
//   xn = rmsnorm(x, ffn_norm)                                   [n, dim]
//   logits = router xn (+ router_bias), f32                      [n, E]
//   ids, w = route(logits) (RouterSpec: softmax_topk | topk_softmax | sigmoid_group)   [n, k] each
//   for each expert e, ascending, over the m tokens routed to it (one grouped matmul per expert):
//     h = act(w_gate xs (+ b_gate), w_up xs (+ b_up))           [m, hidden_local]
//     out[token] += w[token, e] * (w_down h (+ b_down))          [m, dim]
//   out += shared(xn)                                            (shared_hidden_dim > 0)
//   x += out                                                     anchor layers.{i}.ffn.out (partial over expert_ffn)
// A token's sum runs over its experts in ascending index, whatever else is in the batch: batch-invariant.
// Tensor parallelism: every expert's gate/up rows and down columns by its inner rows (unit "expert_ffn"), the shared
// expert's by "shared_ffn"; the router is whole on every rank; a down bias is added by the rank holding column 0.
// Expert parallelism: each expert's tensors are unit number e of "expert" (LogicalTensor::select_*): a rank holds the
// experts the strategy gives it, whole, runs them for the tokens routed to them, and either the anchor's sum (an
// all-reduce over the tp group) adds the other ranks' experts, or (the plan's all-to-all form) the tokens travel to
// the experts and back: forward_alltoall.
#include <algorithm>
#include <stdexcept>

#include "core/model/blocks/block.hpp"
#include "core/model/blocks/block_registry.hpp"

namespace hpcinfer {
namespace {

using Axis = ShardRule::Axis;

std::string expert_tensor(int layer, int e, const char* what) {
  return layer_tensor(layer, ("experts." + std::to_string(e) + "." + what).c_str());
}

class MoeBlock final : public Block {
 public:
  bool recordable() const override { return false; }  // reads the routing on the host
  MoeBlock(BlockBuilder& b, int layer) : be_(b.backend()), ws_(b.workspace()), anchors_(b.anchors()) {
    const ModelDesc& m = b.model();
    spec_ = m.layers[size_t(layer)].ffn;
    dim_ = m.dim;
    eps_ = m.norm_eps;
    ffn_norm_ = b.vector(layer_tensor(layer, "ffn_norm"));
    router_ = b.f32_matrix(layer_tensor(layer, "router"));
    if (spec_.router.bias) router_bias_ = b.vector(layer_tensor(layer, "router_bias"));
    if (spec_.router.score_correction_bias) score_bias_ = b.vector(layer_tensor(layer, "score_bias"));
    for (int e = 0; e < spec_.router.n_experts; ++e) {
      Expert x;
      experts_.emplace_back();
      if (!b.holds(expert_tensor(layer, e, "w_gate"))) continue;  // another rank's expert (expert parallelism)
      x.w_gate = b.matrix(expert_tensor(layer, e, "w_gate"));
      x.w_up = b.matrix(expert_tensor(layer, e, "w_up"));
      x.w_down = b.matrix(expert_tensor(layer, e, "w_down"));
      if (spec_.expert_bias) {
        x.b_gate = b.vector(expert_tensor(layer, e, "b_gate"));
        x.b_up = b.vector(expert_tensor(layer, e, "b_up"));
        if (b.shard(expert_tensor(layer, e, "w_down")).cols.begin == 0) x.b_down = b.vector(expert_tensor(layer, e, "b_down"));
      }
      local_ = x.w_gate->rows();
      experts_.back() = std::move(x);
    }
    if (spec_.shared_hidden_dim > 0) {
      shared_.w_gate = b.matrix(layer_tensor(layer, "shared.w_gate"));
      shared_.w_up = b.matrix(layer_tensor(layer, "shared.w_up"));
      shared_.w_down = b.matrix(layer_tensor(layer, "shared.w_down"));
    }
    out_anchor_ = anchors_.bind(layer_tensor(layer, "ffn.out"));
    dispatch_anchor_ = anchors_.bind(layer_tensor(layer, "moe.dispatch"));
    rows_anchor_ = anchors_.bind(layer_tensor(layer, "moe.rows"));
  }

  void forward(float* x, const StageBatch& b) override {
    if (dispatch_anchor_ >= 0) return forward_alltoall(x, b);
    const int64_t n = b.n, E = spec_.router.n_experts, K = spec_.router.top_k;
    float* xn = ws_.get(0, size_t(n * dim_));
    float* logits = ws_.get(1, size_t(n * E));
    float* out = ws_.get(2, size_t(n * dim_));
    be_.rmsnorm(x, ffn_norm_.f32(), n, dim_, eps_, xn);
    be_.linear_f32(xn, router_.f32(), n, E, dim_, logits);  // [n, E]
    if (router_bias_.get()) be_.add_bias(logits, router_bias_.f32(), n, E);
    ids_.reserve(be_, size_t(n * K) * sizeof(int));
    wts_.reserve(be_, size_t(n * K) * sizeof(float));
    be_.moe_route(logits, n, spec_.router, score_bias_.get() ? score_bias_.f32() : nullptr, ids_.i32(), wts_.f32());
    // The routing to the host: which tokens go to which expert (small: n x k).
    std::vector<int> ids(size_t(n * K));
    std::vector<float> wts(size_t(n * K));
    be_.copy_to_host(ids.data(), ids_.get(), ids.size() * sizeof(int));
    be_.copy_to_host(wts.data(), wts_.get(), wts.size() * sizeof(float));
    std::vector<std::vector<int>> rows(static_cast<size_t>(E));
    std::vector<std::vector<float>> scale(static_cast<size_t>(E));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < K; ++k) {
        const int e = ids[size_t(i * K + k)];
        rows[size_t(e)].push_back(int(i));
        scale[size_t(e)].push_back(wts[size_t(i * K + k)]);
      }
    be_.zero(out, size_t(n * dim_) * sizeof(float));
    for (int64_t e = 0; e < E; ++e) {
      const int64_t m = int64_t(rows[size_t(e)].size());
      const Expert& ex = experts_[size_t(e)];
      if (m == 0 || !ex.w_gate) continue;  // no token for it, or another rank holds it
      rows_.reserve(be_, size_t(m) * sizeof(int));
      scale_.reserve(be_, size_t(m) * sizeof(float));
      be_.copy_to_device(rows_.get(), rows[size_t(e)].data(), size_t(m) * sizeof(int));
      be_.copy_to_device(scale_.get(), scale[size_t(e)].data(), size_t(m) * sizeof(float));
      float* xs = ws_.get(3, size_t(m * dim_));
      float* y = ws_.get(6, size_t(m * dim_));
      be_.select_rows(xn, dim_, rows_.i32(), m, xs);  // [m, dim]
      run_expert(ex, xs, m, y);
      be_.scatter_add_rows(y, m, dim_, rows_.i32(), scale_.f32(), out);
    }
    add_shared(xn, n, out);
    be_.add(x, anchors_.run(out_anchor_, out, n, dim_), n * dim_);
  }

  // The all-to-all form (the plan has an alltoallv step at layers.{i}.moe.dispatch): every rank routes all n tokens
  // alike, takes its even share of them, sends each (token, expert) pair's hidden state and weight to the rank
  // holding the expert, runs its own experts on what it receives (grouped per expert as above), sends the outputs
  // back, adds them to its tokens in ascending expert order (batch-invariant), adds the shared expert (whole here) and
  // the ranks gather each other's rows (allgather_rows at layers.{i}.moe.rows).
  void forward_alltoall(float* x, const StageBatch& b) {
    const int64_t n = b.n, E = spec_.router.n_experts, K = spec_.router.top_k, D = dim_;
    float* xn = ws_.get(0, size_t(n * D));
    float* logits = ws_.get(1, size_t(n * E));
    float* out = ws_.get(2, size_t(n * D));
    be_.rmsnorm(x, ffn_norm_.f32(), n, D, eps_, xn);
    be_.linear_f32(xn, router_.f32(), n, E, D, logits);
    if (router_bias_.get()) be_.add_bias(logits, router_bias_.f32(), n, E);
    ids_.reserve(be_, size_t(n * K) * sizeof(int));
    wts_.reserve(be_, size_t(n * K) * sizeof(float));
    be_.moe_route(logits, n, spec_.router, score_bias_.get() ? score_bias_.f32() : nullptr, ids_.i32(), wts_.f32());
    std::vector<int> ids(size_t(n * K));
    std::vector<float> wts(size_t(n * K)), host_xn(size_t(n * D));
    be_.copy_to_host(ids.data(), ids_.get(), ids.size() * sizeof(int));
    be_.copy_to_host(wts.data(), wts_.get(), wts.size() * sizeof(float));
    be_.copy_to_host(host_xn.data(), xn, host_xn.size() * sizeof(float));
    const int G = anchors_.group_size(dispatch_anchor_), g = anchors_.group_rank(dispatch_anchor_);
    const int64_t lo = n * g / G, hi = n * (g + 1) / G;  // this rank's tokens
    // Dispatch: per (token, expert) pair [token, expert, D values] (ints carried as floats, exact below 2^24).
    const int64_t item = 2 + D;
    std::vector<std::vector<float>> to(static_cast<size_t>(G)), from;
    for (int64_t i = lo; i < hi; ++i)
      for (int64_t k = 0; k < K; ++k) {
        const int e = ids[size_t(i * K + k)];
        std::vector<float>& buf = to[size_t(anchors_.owner(dispatch_anchor_, e))];
        buf.push_back(float(i));
        buf.push_back(float(e));
        buf.insert(buf.end(), host_xn.begin() + i * D, host_xn.begin() + (i + 1) * D);
      }
    anchors_.exchange(dispatch_anchor_, to, from);
    // Run the received pairs, expert by expert; answers go back in the order they came.
    std::vector<std::vector<int64_t>> by_expert(static_cast<size_t>(E));  // (source rank, item index) packed
    for (int r = 0; r < G; ++r)
      for (int64_t j = 0; j < int64_t(from[size_t(r)].size()) / item; ++j)
        by_expert[size_t(from[size_t(r)][size_t(j * item + 1)])].push_back(int64_t(r) << 32 | j);
    std::vector<std::vector<float>> back(static_cast<size_t>(G));
    for (int r = 0; r < G; ++r) back[size_t(r)].resize(from[size_t(r)].size() / size_t(item) * size_t(D));
    std::vector<float> xs_host, y_host;
    for (int64_t e = 0; e < E; ++e) {
      const std::vector<int64_t>& list = by_expert[size_t(e)];
      const int64_t m = int64_t(list.size());
      if (m == 0) continue;
      const Expert& ex = experts_[size_t(e)];
      if (!ex.w_gate) throw std::runtime_error("moe all-to-all: expert " + std::to_string(e) + " was sent to a rank that does not hold it");
      xs_host.resize(size_t(m * D));
      for (int64_t j = 0; j < m; ++j) {
        const auto& src = from[size_t(list[size_t(j)] >> 32)];
        const int64_t at = (list[size_t(j)] & 0xffffffff) * item + 2;
        std::copy(src.begin() + at, src.begin() + at + D, xs_host.begin() + j * D);
      }
      float* xs = ws_.get(3, size_t(m * D));
      float* y = ws_.get(6, size_t(m * D));
      be_.copy_to_device(xs, xs_host.data(), xs_host.size() * sizeof(float));
      run_expert(ex, xs, m, y);
      y_host.resize(size_t(m * D));
      be_.copy_to_host(y_host.data(), y, y_host.size() * sizeof(float));
      for (int64_t j = 0; j < m; ++j) {
        auto& dst = back[size_t(list[size_t(j)] >> 32)];
        std::copy(y_host.begin() + j * D, y_host.begin() + (j + 1) * D, dst.begin() + (list[size_t(j)] & 0xffffffff) * D);
      }
    }
    std::vector<std::vector<float>> answers;
    anchors_.exchange(dispatch_anchor_, back, answers);
    // Combine this rank's tokens: the answers come back per destination in the order the pairs were sent.
    std::vector<float> host_out(size_t(n * D), 0.0f);
    std::vector<size_t> next(static_cast<size_t>(G), 0);
    for (int64_t i = lo; i < hi; ++i) {
      std::vector<std::pair<int, const float*>> parts;  // (expert, its output) of token i
      for (int64_t k = 0; k < K; ++k) {
        const int e = ids[size_t(i * K + k)], r = anchors_.owner(dispatch_anchor_, e);
        parts.push_back({e, answers[size_t(r)].data() + next[size_t(r)]++ * size_t(D)});
      }
      std::sort(parts.begin(), parts.end(), [](const auto& a, const auto& c) { return a.first < c.first; });
      for (const auto& [e, y] : parts) {
        float w = 0;
        for (int64_t k = 0; k < K; ++k)
          if (ids[size_t(i * K + k)] == e) w = wts[size_t(i * K + k)];
        for (int64_t d = 0; d < D; ++d) host_out[size_t(i * D + d)] += w * y[d];
      }
    }
    be_.copy_to_device(out, host_out.data(), host_out.size() * sizeof(float));
    if (shared_.w_gate && hi > lo) add_shared(xn + lo * D, hi - lo, out + lo * D);
    anchors_.gather_rows(rows_anchor_, out, n, D);
    be_.add(x, out, n * D);
  }

  size_t weight_bytes() const override {
    size_t b = ffn_norm_.bytes() + router_.bytes() + router_bias_.bytes() + score_bias_.bytes();
    for (const Expert& e : experts_) b += e.bytes();
    return b + shared_.bytes();
  }
  size_t cache_bytes() const override { return 0; }

 private:
  struct Expert;
  // y[m, dim] = expert ex on xs[m, dim] (its biases, its activation), without the routing weight.
  void run_expert(const Expert& ex, const float* xs, int64_t m, float* y);
  // out[m, dim] += the shared expert on xn[m, dim] (when the layer has one).
  void add_shared(const float* xn, int64_t m, float* out);
  struct Expert {
    std::unique_ptr<PackedMatrix> w_gate, w_up;  // [local, dim]
    std::unique_ptr<PackedMatrix> w_down;        // [dim, local]
    DeviceBuffer b_gate, b_up, b_down;           // [local] x2, [dim] (expert_bias)
    size_t bytes() const {
      if (!w_gate) return 0;
      return w_gate->bytes() + w_up->bytes() + w_down->bytes() + b_gate.bytes() + b_up.bytes() + b_down.bytes();
    }
  };
  Backend& be_;
  Workspace& ws_;
  Anchors& anchors_;
  FfnSpec spec_;
  int64_t dim_ = 0, local_ = 0;
  float eps_ = 0;
  DeviceBuffer ffn_norm_, router_, router_bias_, score_bias_;  // [dim], [E, dim] f32, [E], [E]
  std::vector<Expert> experts_;
  Expert shared_;
  DeviceBuffer ids_, wts_, rows_, scale_;  // routing scratch
  int out_anchor_ = -1, dispatch_anchor_ = -1, rows_anchor_ = -1;
};

void MoeBlock::run_expert(const Expert& ex, const float* xs, int64_t m, float* y) {
  float* gate = ws_.get(4, size_t(m * local_));
  float* up = ws_.get(5, size_t(m * local_));
  ex.w_gate->matmul(xs, m, gate);  // [m, local]
  ex.w_up->matmul(xs, m, up);
  if (ex.b_gate.get()) {
    be_.add_bias(gate, ex.b_gate.f32(), m, local_);
    be_.add_bias(up, ex.b_up.f32(), m, local_);
  }
  if (spec_.activation == "swiglu_oai")
    be_.swiglu_oai(gate, up, m * local_, spec_.swiglu_alpha, spec_.swiglu_limit, gate);
  else
    be_.swiglu(gate, up, m * local_, gate);
  ex.w_down->matmul(gate, m, y);  // [m, dim]: a partial sum when the expert's rows are split
  if (ex.b_down.get()) be_.add_bias(y, ex.b_down.f32(), m, dim_);
}

void MoeBlock::add_shared(const float* xn, int64_t m, float* out) {
  if (!shared_.w_gate) return;
  const int64_t s = shared_.w_gate->rows();
  float* gate = ws_.get(4, size_t(m * s));
  float* up = ws_.get(5, size_t(m * s));
  float* y = ws_.get(6, size_t(m * dim_));
  shared_.w_gate->matmul(xn, m, gate);
  shared_.w_up->matmul(xn, m, up);
  be_.swiglu(gate, up, m * s, gate);
  shared_.w_down->matmul(gate, m, y);
  be_.add(out, y, m * dim_);
}

class MoeKind final : public BlockKind {
 public:
  std::string name() const override { return "moe"; }
  void validate(const ModelDesc& m, int layer) const override {
    const FfnSpec& f = m.layers[size_t(layer)].ffn;
    const RouterSpec& r = f.router;
    auto need = [&](bool ok, const std::string& field, const std::string& why) {
      if (!ok) throw std::invalid_argument("layer " + std::to_string(layer) + " moe: " + field + ": " + why);
    };
    need(f.hidden_dim > 0, "moe_intermediate_size", "must be positive, got " + std::to_string(f.hidden_dim));
    need(r.n_experts > 0, "n_experts", "must be positive, got " + std::to_string(r.n_experts));
    need(r.top_k > 0 && r.top_k <= r.n_experts, "num_experts_per_tok",
         std::to_string(r.top_k) + " must be in [1, " + std::to_string(r.n_experts) + "]");
    need(r.kind == "softmax_topk" || r.kind == "topk_softmax" || r.kind == "sigmoid_group", "router",
         "'" + r.kind + "' is not one of softmax_topk, topk_softmax, sigmoid_group");
    if (r.kind == "sigmoid_group") {
      need(r.n_group > 0 && r.n_experts % r.n_group == 0, "n_group",
           std::to_string(r.n_group) + " must divide the " + std::to_string(r.n_experts) + " experts");
      need(r.topk_group > 0 && r.topk_group <= r.n_group, "topk_group",
           std::to_string(r.topk_group) + " must be in [1, n_group " + std::to_string(r.n_group) + "]");
      need(r.top_k <= r.topk_group * (r.n_experts / r.n_group), "num_experts_per_tok",
           "more experts than the kept groups hold");
    }
    need(f.activation == "silu" || f.activation == "swiglu_oai", "activation",
         "'" + f.activation + "' is not one of silu, swiglu_oai");
  }
  void declare(const ModelDesc& m, int i, ModelLayout& out) const override {
    const FfnSpec& f = m.layers[size_t(i)].ffn;
    const int64_t D = m.dim, H = f.hidden_dim, E = f.router.n_experts;
    auto add = [&](const std::string& name, int64_t rows, int64_t cols, const ShardRule& r) {
      out.tensors.push_back({name, i, rows, cols, r});
    };
    add(layer_tensor(i, "ffn_norm"), 1, D, {});
    add(layer_tensor(i, "router"), E, D, {});
    out.tensors.back().f32 = true;
    if (f.router.bias) add(layer_tensor(i, "router_bias"), 1, E, {});
    if (f.router.score_correction_bias) add(layer_tensor(i, "score_bias"), 1, E, {});
    const ShardRule rows{Axis::rows, "expert_ffn", 1}, cols{Axis::cols, "expert_ffn", 1};
    for (int e = 0; e < E; ++e) {
      const size_t first = out.tensors.size();
      add(expert_tensor(i, e, "w_gate"), H, D, rows);
      add(expert_tensor(i, e, "w_up"), H, D, rows);
      add(expert_tensor(i, e, "w_down"), D, H, cols);
      if (f.expert_bias) {
        add(expert_tensor(i, e, "b_gate"), 1, H, cols);
        add(expert_tensor(i, e, "b_up"), 1, H, cols);
        add(expert_tensor(i, e, "b_down"), 1, D, {});
      }
      for (size_t t = first; t < out.tensors.size(); ++t)  // expert e of "expert": whole on the ranks that hold it
        out.tensors[t].select_unit = "expert", out.tensors[t].select_index = e;
    }
    if (f.shared_hidden_dim > 0) {
      const int64_t S = f.shared_hidden_dim;
      add(layer_tensor(i, "shared.w_gate"), S, D, {Axis::rows, "shared_ffn", 1});
      add(layer_tensor(i, "shared.w_up"), S, D, {Axis::rows, "shared_ffn", 1});
      add(layer_tensor(i, "shared.w_down"), D, S, {Axis::cols, "shared_ffn", 1});
    }
    out.anchors.push_back({layer_tensor(i, "moe.dispatch"), i, AnchorDecl::Combine::route, {"expert"}});
    out.anchors.push_back({layer_tensor(i, "moe.rows"), i, AnchorDecl::Combine::concat_rows, {"expert"}});
    out.anchors.push_back({layer_tensor(i, "ffn.out"), i, AnchorDecl::Combine::sum, {"expert_ffn", "expert", "shared_ffn"}});
  }
  double cache_bytes_per_token(const ModelDesc&, int, const RankPlan&) const override { return 0; }
  std::vector<double> scratch_per_token(const ModelDesc& m, int i, const RankPlan& p) const override {
    const FfnSpec& f = m.layers[size_t(i)].ffn;
    const WeightShard* s = p.shard(expert_tensor(i, 0, "w_gate"));
    const double local = double(s ? s->rows.size() : f.hidden_dim);
    const WeightShard* sh = p.shard(layer_tensor(i, "shared.w_gate"));
    const double shared = double(sh ? sh->rows.size() : f.shared_hidden_dim);
    // Every token may go to the same expert: the gathered rows are bounded by the batch.
    const double inner = std::max(local, shared);
    return {double(m.dim), double(f.router.n_experts), double(m.dim), double(m.dim), inner, inner, double(m.dim)};
  }
  std::unique_ptr<Block> build(BlockBuilder& b, int layer) const override {
    return std::make_unique<MoeBlock>(b, layer);
  }
};

}  // namespace

const BlockKind& moe_ffn_kind() {
  static const MoeKind kind;
  return kind;
}

}  // namespace hpcinfer
