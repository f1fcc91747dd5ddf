// Attention kind "palu": grouped-query attention whose KV cache holds low-rank latents instead of heads (PaLU, Chang
// et al., ICLR 2025; the factors come from `hpcinfer palu compress`, core/palu/). The kv heads form groups of
// palu_group_size consecutive heads; group g has
//   wk_down_g [rk, dim], wk_up_g [gs*hd, rk]   keys   k = wk_up_g (wk_down_g xn), one head of hd values per kv head
//   wv_down_g [rv, dim]                        values v = wv_up_g (wv_down_g xn), wv_up_g folded into wo_latent
// and the forward pass is
//   xn = rmsnorm(x, attn_norm)                                   [n, dim]
//   q = rope(wq xn)                                              [n, q_local]
//   zk = wk_down xn, zv = wv_down xn                             [n, G_local*rk], [n, G_local*rv]
//   cache_k[slot, g, pos] = zk_g, cache_v[slot, g, pos] = zv_g  the latents only: (rk + rv) values per group
//   per sequence of the batch, its keys rebuilt for positions [0, P):
//     k_h = rope(wk_up_g cache_k[slot, g, :P]) per kv head h of group g (RoPE after the rebuild, on real positions)
//   y_h = softmax(q_h . k_h / sqrt(hd)) cache_v[slot, g(h), :P]  [n, heads, rv]   (values stay latent)
//   x += wo_latent y                                             [n, dim]; anchor layers.{i}.attn.out
// where wo_latent[:, h*rv:(h+1)*rv] = wo[:, h*hd:(h+1)*hd] wv_up_{g(h)}[rows of kv head h/group] (folded offline), so
// at full rank the layer is the gqa layer exactly. The attention op runs over a per-sequence scratch whose rows are
// [k_h, zv_g] (hd + rv values) used as keys and as values with queries [q_h, 0]: scores are q.k, the output's last rv
// values are sum p zv. Rebuilding the keys costs P * gs*hd * rk multiply-adds per group and step: PaLU trades the
// cache's bytes for that compute (bench/RESULTS.md measures it).
// Tensor parallelism: wq rows and wo_latent columns by q_head, wk_up rows by kv_head, wk_down / wv_down rows by
// kv_group; a group never straddles ranks (tp must divide the groups: strategy tp_pp refuses other tp values).
// Not supported (refused by validate): q/k/v biases, per-head q/k norms, sinks.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "core/model/blocks/block.hpp"
#include "core/model/blocks/block_registry.hpp"

namespace hpcinfer {
namespace {

using Axis = ShardRule::Axis;

class PaluBlock final : public Block {
 public:
  PaluBlock(BlockBuilder& b, int layer) : be_(b.backend()), ws_(b.workspace()), anchors_(b.anchors()) {
    const ModelDesc& m = b.model();
    const AttentionSpec& a = m.layers[size_t(layer)].attn;
    dim_ = m.dim;
    eps_ = m.norm_eps;
    hd_ = a.head_dim;
    gs_ = a.palu_group_size;
    rk_ = a.palu_rank_k;
    rv_ = a.palu_rank_v;
    width_ = hd_ + rv_;
    ctx_ = b.max_ctx();
    const WeightShard& q = b.shard(layer_tensor(layer, "wq"));
    const WeightShard& up = b.shard(layer_tensor(layer, "wk_up"));
    const WeightShard& down = b.shard(layer_tensor(layer, "wk_down"));
    heads_ = q.rows.size() / hd_;
    kv_heads_ = up.rows.size() / hd_;
    groups_ = down.rows.size() / rk_;
    params_.n_heads = heads_;
    params_.q_head_begin = q.rows.begin / hd_;
    params_.kv_head_begin = up.rows.begin / hd_;
    params_.group = a.n_heads / a.n_kv_heads;
    params_.window = a.sliding_window;
    params_.scale = 1.0f / std::sqrt(float(hd_));
    attn_norm_ = b.vector(layer_tensor(layer, "attn_norm"));
    wq_ = b.matrix(layer_tensor(layer, "wq"));
    wk_down_ = b.matrix(layer_tensor(layer, "wk_down"));
    wv_down_ = b.matrix(layer_tensor(layer, "wv_down"));
    for (int64_t g = 0; g < groups_; ++g)
      wk_up_.push_back(b.matrix_rows(layer_tensor(layer, "wk_up"), {g * gs_ * hd_, (g + 1) * gs_ * hd_}));
    wo_ = b.matrix(layer_tensor(layer, "wo_latent"));
    if (a.o_bias) bo_ = b.vector(layer_tensor(layer, "bo"));
    rope_ = b.rope_tables(a.rope, hd_);
    k_shape_ = {b.slots(), groups_, ctx_, rk_};
    v_shape_ = {b.slots(), groups_, ctx_, rv_};
    k_cache_ = DeviceBuffer(be_, k_shape_.floats() * sizeof(float));
    v_cache_ = DeviceBuffer(be_, v_shape_.floats() * sizeof(float));
    std::vector<int> iota(size_t(ctx_), 0);
    zeros_ = DeviceBuffer(be_, iota.size() * sizeof(int));  // slot 0 of the one-sequence scratch
    std::iota(iota.begin(), iota.end(), 0);
    iota_ = DeviceBuffer(be_, iota.size() * sizeof(int));   // positions 0, 1, ... of the rebuilt keys
    be_.copy_to_device(iota_.get(), iota.data(), iota.size() * sizeof(int));
    out_anchor_ = anchors_.bind(layer_tensor(layer, "attn.out"));
  }

  void forward(float* x, const StageBatch& b) override {
    const int64_t n = b.n;
    if (!b.host_slot || !b.host_pos) throw std::runtime_error("palu attention: the batch carries no host slots");
    float* xn = ws_.get(0, size_t(n * dim_));
    float* q = ws_.get(1, size_t(n * heads_ * hd_));
    float* zk = ws_.get(2, size_t(n * groups_ * rk_));
    float* zv = ws_.get(3, size_t(n * groups_ * rv_));
    float* qw = ws_.get(4, size_t(n * heads_ * width_));  // [n, heads, hd + rv]: [q_h, 0]
    float* ow = ws_.get(5, size_t(n * heads_ * width_));  // [n, heads, hd + rv]: [sum p k_h, sum p zv]
    float* y = ws_.get(6, size_t(n * heads_ * rv_));      // [n, heads, rv]
    float* proj = ws_.get(7, size_t(n * dim_));
    be_.rmsnorm(x, attn_norm_.f32(), n, dim_, eps_, xn);
    wq_->matmul(xn, n, q);       // [n, heads * hd]
    wk_down_->matmul(xn, n, zk);  // [n, groups * rk]
    wv_down_->matmul(xn, n, zv);  // [n, groups * rv]
    if (rope_.rotary_dim > 0) be_.rope(q, n, heads_, hd_, b.pos, rope_);
    if (rk_ == rv_) {  // uniform ranks (what compress writes): both latents in one store
      be_.kv_store(zk, zv, n, b.slot, b.pos, k_shape_, k_cache_.f32(), v_cache_.f32());
    } else {  // each cache on its own (the op writes k and v alike: here both are the same latent)
      be_.kv_store(zk, zk, n, b.slot, b.pos, k_shape_, k_cache_.f32(), k_cache_.f32());
      be_.kv_store(zv, zv, n, b.slot, b.pos, v_shape_, v_cache_.f32(), v_cache_.f32());
    }
    be_.zero(qw, size_t(n * heads_ * width_) * sizeof(float));
    be_.copy_cols(q, hd_, qw, width_, n * heads_, hd_);
    // Each run of consecutive tokens of one sequence attends over that sequence's rebuilt keys.
    for (int64_t i0 = 0; i0 < n;) {
      int64_t i1 = i0 + 1;
      while (i1 < n && b.host_slot[i1] == b.host_slot[i0]) ++i1;
      const int64_t positions = 1 + *std::max_element(b.host_pos + i0, b.host_pos + i1);
      float* kv = rebuild(b.host_slot[i0], positions);
      AttentionParams p = params_;
      p.cache = {1, kv_heads_, positions, width_};
      be_.attention(qw + i0 * heads_ * width_, i1 - i0, zeros_.i32(), b.pos + i0, kv, kv, p,
                    ow + i0 * heads_ * width_);
      i0 = i1;
    }
    be_.copy_cols(ow + hd_, width_, y, rv_, n * heads_, rv_);
    wo_->matmul(y, n, proj);  // [n, dim]: a partial sum when the heads are split
    float* whole = anchors_.run(out_anchor_, proj, n, dim_);
    if (bo_.get()) be_.add_bias(whole, bo_.f32(), n, dim_);
    be_.add(x, whole, n * dim_);
  }

  size_t weight_bytes() const override {
    size_t s = attn_norm_.bytes() + bo_.bytes() + wq_->bytes() + wk_down_->bytes() + wv_down_->bytes() + wo_->bytes();
    for (const auto& m : wk_up_) s += m->bytes();
    return s;
  }
  size_t cache_bytes() const override { return k_cache_.bytes() + v_cache_.bytes(); }
  bool recordable() const override { return false; }  // the rebuilt length follows the batch's positions

 private:
  // Sequence `slot`'s keys and value latents for positions [0, positions): [kv_heads, positions, hd + rv] rows
  // [rope(k_h), zv_g] in workspace slots 8 (the rebuilt group) and 9 (the scratch returned).
  float* rebuild(int slot, int64_t positions) {
    const int64_t group_rows = gs_ * hd_;
    float* keys = ws_.get(8, size_t(positions * group_rows));          // [positions, gs * hd]
    float* kv = ws_.get(9, size_t(kv_heads_ * positions * width_));    // [kv_heads, positions, hd + rv]
    for (int64_t g = 0; g < groups_; ++g) {
      const float* lk = k_cache_.f32() + (int64_t(slot) * groups_ + g) * ctx_ * rk_;  // [positions, rk]
      const float* lv = v_cache_.f32() + (int64_t(slot) * groups_ + g) * ctx_ * rv_;  // [positions, rv]
      wk_up_[size_t(g)]->matmul(lk, positions, keys);
      if (rope_.rotary_dim > 0) be_.rope(keys, positions, gs_, hd_, iota_.i32(), rope_);
      for (int64_t j = 0; j < gs_; ++j) {
        float* head = kv + (g * gs_ + j) * positions * width_;
        be_.copy_cols(keys + j * hd_, group_rows, head, width_, positions, hd_);
        be_.copy_cols(lv, rv_, head + hd_, width_, positions, rv_);
      }
    }
    return kv;
  }

  Backend& be_;
  Workspace& ws_;
  Anchors& anchors_;
  int64_t dim_ = 0, hd_ = 0, gs_ = 0, rk_ = 0, rv_ = 0, width_ = 0, ctx_ = 0, heads_ = 0, kv_heads_ = 0, groups_ = 0;
  float eps_ = 0;
  AttentionParams params_;
  RopeTables rope_;
  DeviceBuffer attn_norm_, bo_;                         // [dim], [dim]
  std::unique_ptr<PackedMatrix> wq_;                    // [heads * hd, dim]
  std::unique_ptr<PackedMatrix> wk_down_, wv_down_;     // [groups * rk, dim], [groups * rv, dim]
  std::vector<std::unique_ptr<PackedMatrix>> wk_up_;    // per local group: [gs * hd, rk]
  std::unique_ptr<PackedMatrix> wo_;                    // [dim, heads * rv]
  KvCacheShape k_shape_, v_shape_;                      // [slots, groups, max_ctx, rk | rv]
  DeviceBuffer k_cache_, v_cache_;
  DeviceBuffer zeros_, iota_;                           // int [max_ctx]
  int out_anchor_ = -1;
};

class PaluKind final : public BlockKind {
 public:
  std::string name() const override { return "palu"; }

  void validate(const ModelDesc& m, int layer) const override {
    gqa_attention_kind().validate(m, layer);  // heads, kv heads, head_dim, window: the gqa layer it compresses
    const AttentionSpec& a = m.layers[size_t(layer)].attn;
    auto need = [&](bool ok, const std::string& field, const std::string& why) {
      if (!ok) throw std::invalid_argument("layer " + std::to_string(layer) + " palu attention: " + field + ": " + why);
    };
    need(a.palu_group_size > 0 && a.n_kv_heads % a.palu_group_size == 0, "group_size",
         std::to_string(a.palu_group_size) + " must be positive and divide the " + std::to_string(a.n_kv_heads) +
             " kv heads");
    const int64_t full = a.palu_group_size * a.head_dim;
    need(a.palu_rank_k > 0 && a.palu_rank_k <= full, "rank_k",
         std::to_string(a.palu_rank_k) + " must be in [1, " + std::to_string(full) + "] (group size x head_dim)");
    need(a.palu_rank_v > 0 && a.palu_rank_v <= full, "rank_v",
         std::to_string(a.palu_rank_v) + " must be in [1, " + std::to_string(full) + "] (group size x head_dim)");
    need(!a.qkv_bias, "attention_bias", "q/k/v biases are not supported by palu");
    need(!a.qk_norm, "qk_norm", "per-head q/k norms are not supported by palu");
    need(!a.sinks, "sinks", "attention sinks are not supported by palu");
  }

  void declare(const ModelDesc& m, int i, ModelLayout& out) const override {
    const AttentionSpec& a = m.layers[size_t(i)].attn;
    const int64_t hd = a.head_dim, D = m.dim, groups = a.n_kv_heads / a.palu_group_size;
    auto add = [&](const char* what, int64_t rows, int64_t cols, const ShardRule& r) {
      out.tensors.push_back({layer_tensor(i, what), i, rows, cols, r});
    };
    add("attn_norm", 1, D, {});
    add("wq", a.n_heads * hd, D, {Axis::rows, "q_head", hd});
    add("wk_down", groups * a.palu_rank_k, D, {Axis::rows, "kv_group", a.palu_rank_k});
    add("wk_up", a.n_kv_heads * hd, a.palu_rank_k, {Axis::rows, "kv_head", hd});
    add("wv_down", groups * a.palu_rank_v, D, {Axis::rows, "kv_group", a.palu_rank_v});
    add("wo_latent", D, a.n_heads * a.palu_rank_v, {Axis::cols, "q_head", a.palu_rank_v});
    if (a.o_bias) add("bo", 1, D, {});
    out.anchors.push_back({layer_tensor(i, "attn.out"), i, AnchorDecl::Combine::sum, {"q_head"}});
  }

  // The latents: (rk + rv) f32 values per local group and token.
  double cache_bytes_per_token(const ModelDesc& m, int i, const RankPlan& p) const override {
    const AttentionSpec& a = m.layers[size_t(i)].attn;
    const int64_t groups = a.n_kv_heads / a.palu_group_size;
    const double local = double(plan_rows(p, layer_tensor(i, "wk_down"), groups * a.palu_rank_k) / a.palu_rank_k);
    return sizeof(float) * local * double(a.palu_rank_k + a.palu_rank_v);
  }
  // Slots 0-7 per batch token; slots 8 and 9 hold one sequence's rebuilt keys and grow with its context, not the
  // batch: counted per token here as for a prefill, the planner's usual case (a decode step at context P uses
  // P * (gs*hd + kv_heads*(hd + rv)) floats there).
  std::vector<double> scratch_per_token(const ModelDesc& m, int i, const RankPlan& p) const override {
    const AttentionSpec& a = m.layers[size_t(i)].attn;
    const double q = double(plan_rows(p, layer_tensor(i, "wq"), a.n_heads * a.head_dim));
    const double heads = q / double(a.head_dim);
    const double kv_heads = double(plan_rows(p, layer_tensor(i, "wk_up"), a.n_kv_heads * a.head_dim)) / double(a.head_dim);
    const double groups = kv_heads / a.palu_group_size, width = double(a.head_dim + a.palu_rank_v);
    return {double(m.dim),  q, groups * double(a.palu_rank_k), groups * double(a.palu_rank_v), heads * width,
            heads * width, heads * double(a.palu_rank_v), double(m.dim), double(a.palu_group_size * a.head_dim),
            kv_heads * width};
  }
  std::unique_ptr<Block> build(BlockBuilder& b, int layer) const override {
    return std::make_unique<PaluBlock>(b, layer);
  }
};

}  // namespace

const BlockKind& palu_attention_kind() {
  static const PaluKind kind;
  return kind;
}

}  // namespace hpcinfer
