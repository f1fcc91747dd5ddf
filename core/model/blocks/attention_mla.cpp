// Attention kind "mla": DeepSeek-V2/V3 multi-head latent attention, in the absorbed form for prefill and decode alike.
//   xn = rmsnorm(x, attn_norm)                                      [n, dim]
//   q = wq_b rmsnorm(wq_a xn, q_a_norm)   (or wq xn)                [n, heads, nope + rope]
//   c = rmsnorm(wkv_a xn, kv_a_norm)                                [n, kv_lora]   the latent
//   kpe = rope(wk_pe xn)                                            [n, rope]      one RoPE key shared by all heads
//   cache[slot, pos] = [c, kpe]                                     kv_lora + rope values per token per layer
//   per head h: q'_h = [w_uk_h^T q_nope_h, rope(q_pe_h)]            [kv_lora + rope]  (kv_b_proj's key part folded in)
//   o'_h = softmax(scale q'_h . cache) cache                        [kv_lora + rope]  (the first kv_lora: sum p c)
//   o_h = w_uv_h o'_h[:kv_lora]                                     [v]               (kv_b_proj's value part)
//   x += wo o                                                       [n, dim]; anchor layers.{i}.attn.out
// q'.cache = q_nope . (w_uk c) + q_pe . kpe, the expanded form's scores, without expanding any key or value. Prefill
// uses the same form (one code path, the cache written once); for long prompts the expanded form would do fewer
// flops (kv_lora + rope = 576 values per head and position against 192 for DeepSeek-V3's shapes).
// The cache is one [slots, 1, max_ctx, kv_lora + rope] buffer read as keys and as values: the attention op sees an
// MQA layer whose single kv head every query head shares. Tensor parallelism splits the heads (wq_b, w_uk_t, w_uv
// rows and wo columns by q_head); the latent path (wq_a, wkv_a, wk_pe, norms) and the cache are whole on every rank.
#include <cmath>
#include <stdexcept>

#include "core/model/blocks/block.hpp"
#include "core/model/blocks/block_registry.hpp"

namespace hpcinfer {
namespace {

using Axis = ShardRule::Axis;

class MlaBlock final : public Block {
 public:
  MlaBlock(BlockBuilder& b, int layer) : be_(b.backend()), ws_(b.workspace()), anchors_(b.anchors()) {
    const ModelDesc& m = b.model();
    a_ = m.layers[size_t(layer)].attn;
    dim_ = m.dim;
    eps_ = m.norm_eps;
    qk_ = a_.qk_nope_head_dim + a_.qk_rope_head_dim;
    lat_ = a_.kv_lora_rank + a_.qk_rope_head_dim;
    attn_norm_ = b.vector(layer_tensor(layer, "attn_norm"));
    if (a_.q_lora_rank > 0) {
      wq_a_ = b.matrix(layer_tensor(layer, "wq_a"));
      q_a_norm_ = b.vector(layer_tensor(layer, "q_a_norm"));
      wq_b_ = b.matrix(layer_tensor(layer, "wq_b"));
    } else {
      wq_b_ = b.matrix(layer_tensor(layer, "wq"));
    }
    heads_ = wq_b_->rows() / qk_;
    const WeightShard& q = b.shard(layer_tensor(layer, a_.q_lora_rank > 0 ? "wq_b" : "wq"));
    wkv_a_ = b.matrix(layer_tensor(layer, "wkv_a"));
    wk_pe_ = b.matrix(layer_tensor(layer, "wk_pe"));
    kv_a_norm_ = b.vector(layer_tensor(layer, "kv_a_norm"));
    for (int64_t h = 0; h < heads_; ++h) {
      w_uk_t_.push_back(b.matrix_rows(layer_tensor(layer, "w_uk_t"), {h * a_.kv_lora_rank, (h + 1) * a_.kv_lora_rank}));
      w_uv_.push_back(b.matrix_rows(layer_tensor(layer, "w_uv"), {h * a_.v_head_dim, (h + 1) * a_.v_head_dim}));
    }
    wo_ = b.matrix(layer_tensor(layer, "wo"));
    RopeSpec r = a_.rope;
    r.rotary_dim = 0;  // the whole rope part rotates
    rope_ = b.rope_tables(r, a_.qk_rope_head_dim);
    params_.n_heads = heads_;
    params_.q_head_begin = q.rows.begin / qk_;
    params_.kv_head_begin = 0;
    params_.group = m.layers[size_t(layer)].attn.n_heads;  // every query head reads the one latent "kv head"
    params_.window = a_.sliding_window;
    params_.scale = a_.softmax_scale > 0 ? a_.softmax_scale : 1.0f / std::sqrt(float(qk_));
    params_.cache = {b.slots(), 1, b.max_ctx(), lat_};
    cache_ = DeviceBuffer(be_, params_.cache.floats() * sizeof(float));
    out_anchor_ = anchors_.bind(layer_tensor(layer, "attn.out"));
  }

  void forward(float* x, const StageBatch& b) override {
    const int64_t n = b.n, kv = a_.kv_lora_rank, rope = a_.qk_rope_head_dim, nope = a_.qk_nope_head_dim,
                  v = a_.v_head_dim;
    float* xn = ws_.get(0, size_t(n * dim_));
    float* q = ws_.get(1, size_t(n * heads_ * qk_));
    float* row = ws_.get(2, size_t(n * lat_));           // this step's cache rows [n, kv_lora + rope]
    float* qq = ws_.get(3, size_t(n * heads_ * lat_));    // absorbed queries [n, heads, kv_lora + rope]
    float* oo = ws_.get(4, size_t(n * heads_ * lat_));    // attention outputs, same shape
    float* t1 = ws_.get(5, size_t(n * std::max(kv, nope)));
    float* t2 = ws_.get(6, size_t(n * std::max({kv, v, a_.q_lora_rank, rope})));
    float* o = ws_.get(7, size_t(n * heads_ * v));
    float* proj = ws_.get(8, size_t(n * dim_));
    float* pe = ws_.get(9, size_t(n * heads_ * rope));   // the queries' RoPE parts [n, heads, rope]
    be_.rmsnorm(x, attn_norm_.f32(), n, dim_, eps_, xn);
    if (wq_a_) {
      wq_a_->matmul(xn, n, t2);  // [n, q_lora]
      be_.rmsnorm(t2, q_a_norm_.f32(), n, a_.q_lora_rank, eps_, t2);
      wq_b_->matmul(t2, n, q);   // [n, heads * (nope + rope)]
    } else {
      wq_b_->matmul(xn, n, q);
    }
    // The cache rows: [rmsnorm(wkv_a xn), rope(wk_pe xn)].
    wkv_a_->matmul(xn, n, t1);  // [n, kv_lora]
    be_.rmsnorm(t1, kv_a_norm_.f32(), n, kv, eps_, t1);
    be_.copy_cols(t1, kv, row, lat_, n, kv);
    wk_pe_->matmul(xn, n, t2);  // [n, rope]
    be_.rope(t2, n, 1, rope, b.pos, rope_);
    be_.copy_cols(t2, rope, row + kv, lat_, n, rope);
    be_.kv_store(row, row, n, b.slot, b.pos, params_.cache, cache_.f32(), cache_.f32());
    // Absorbed queries, head by head: [w_uk_h^T q_nope_h, rope(q_pe_h)].
    for (int64_t h = 0; h < heads_; ++h) {
      be_.copy_cols(q + h * qk_, heads_ * qk_, t1, nope, n, nope);  // q_nope_h [n, nope]
      w_uk_t_[size_t(h)]->matmul(t1, n, t2);                           // [n, kv_lora]
      be_.copy_cols(t2, kv, qq + h * lat_, heads_ * lat_, n, kv);
      be_.copy_cols(q + h * qk_ + nope, heads_ * qk_, pe + h * rope, heads_ * rope, n, rope);
    }
    be_.rope(pe, n, heads_, rope, b.pos, rope_);
    for (int64_t h = 0; h < heads_; ++h) be_.copy_cols(pe + h * rope, heads_ * rope, qq + h * lat_ + kv, heads_ * lat_, n, rope);
    be_.attention(qq, n, b.slot, b.pos, cache_.f32(), cache_.f32(), params_, oo);
    for (int64_t h = 0; h < heads_; ++h) {
      be_.copy_cols(oo + h * lat_, heads_ * lat_, t1, kv, n, kv);  // sum p c for head h [n, kv_lora]
      w_uv_[size_t(h)]->matmul(t1, n, t2);                          // [n, v]
      be_.copy_cols(t2, v, o + h * v, heads_ * v, n, v);
    }
    wo_->matmul(o, n, proj);  // [n, dim]: a partial sum when the heads are split
    be_.add(x, anchors_.run(out_anchor_, proj, n, dim_), n * dim_);
  }

  size_t weight_bytes() const override {
    size_t b = attn_norm_.bytes() + q_a_norm_.bytes() + kv_a_norm_.bytes() + wq_b_->bytes() + wkv_a_->bytes() +
               wk_pe_->bytes() + wo_->bytes() + (wq_a_ ? wq_a_->bytes() : 0);
    for (size_t h = 0; h < w_uk_t_.size(); ++h) b += w_uk_t_[h]->bytes() + w_uv_[h]->bytes();
    return b;
  }
  size_t cache_bytes() const override { return cache_.bytes(); }

 private:
  Backend& be_;
  Workspace& ws_;
  Anchors& anchors_;
  AttentionSpec a_;
  int64_t dim_ = 0, qk_ = 0, lat_ = 0, heads_ = 0;
  float eps_ = 0;
  DeviceBuffer attn_norm_, q_a_norm_, kv_a_norm_;  // [dim], [q_lora], [kv_lora]
  std::unique_ptr<PackedMatrix> wq_a_;             // [q_lora, dim]
  std::unique_ptr<PackedMatrix> wq_b_;             // [heads * (nope + rope), q_lora or dim]
  std::unique_ptr<PackedMatrix> wkv_a_, wk_pe_;    // [kv_lora, dim], [rope, dim]
  std::vector<std::unique_ptr<PackedMatrix>> w_uk_t_, w_uv_;  // per local head: [kv_lora, nope], [v, kv_lora]
  std::unique_ptr<PackedMatrix> wo_;               // [dim, heads * v]
  RopeTables rope_;
  AttentionParams params_;
  DeviceBuffer cache_;                             // [slots, 1, max_ctx, kv_lora + rope], keys and values
  int out_anchor_ = -1;
};

class MlaKind final : public BlockKind {
 public:
  std::string name() const override { return "mla"; }
  void validate(const ModelDesc& m, int layer) const override {
    const AttentionSpec& a = m.layers[size_t(layer)].attn;
    auto need = [&](bool ok, const std::string& field, const std::string& why) {
      if (!ok) throw std::invalid_argument("layer " + std::to_string(layer) + " mla: " + field + ": " + why);
    };
    need(a.n_heads > 0, "num_attention_heads", "must be positive");
    need(a.kv_lora_rank > 0, "kv_lora_rank", "must be positive, got " + std::to_string(a.kv_lora_rank));
    need(a.q_lora_rank >= 0, "q_lora_rank", "must not be negative");
    need(a.qk_nope_head_dim > 0, "qk_nope_head_dim", "must be positive");
    need(a.qk_rope_head_dim > 0 && a.qk_rope_head_dim % 2 == 0, "qk_rope_head_dim", "must be positive and even");
    need(a.v_head_dim > 0, "v_head_dim", "must be positive");
  }
  void declare(const ModelDesc& m, int i, ModelLayout& out) const override {
    const AttentionSpec& a = m.layers[size_t(i)].attn;
    const int64_t D = m.dim, H = a.n_heads, qk = a.qk_nope_head_dim + a.qk_rope_head_dim;
    auto add = [&](const char* what, int64_t rows, int64_t cols, const ShardRule& r) {
      out.tensors.push_back({layer_tensor(i, what), i, rows, cols, r});
    };
    add("attn_norm", 1, D, {});
    if (a.q_lora_rank > 0) {
      add("wq_a", a.q_lora_rank, D, {});
      add("q_a_norm", 1, a.q_lora_rank, {});
      add("wq_b", H * qk, a.q_lora_rank, {Axis::rows, "q_head", qk});
    } else {
      add("wq", H * qk, D, {Axis::rows, "q_head", qk});
    }
    add("wkv_a", a.kv_lora_rank, D, {});
    add("wk_pe", a.qk_rope_head_dim, D, {});
    add("kv_a_norm", 1, a.kv_lora_rank, {});
    add("w_uk_t", H * a.kv_lora_rank, a.qk_nope_head_dim, {Axis::rows, "q_head", a.kv_lora_rank});
    add("w_uv", H * a.v_head_dim, a.kv_lora_rank, {Axis::rows, "q_head", a.v_head_dim});
    add("wo", D, H * a.v_head_dim, {Axis::cols, "q_head", a.v_head_dim});
    out.anchors.push_back({layer_tensor(i, "attn.out"), i, AnchorDecl::Combine::sum, {"q_head"}});
  }
  double cache_bytes_per_token(const ModelDesc& m, int i, const RankPlan&) const override {
    const AttentionSpec& a = m.layers[size_t(i)].attn;
    return sizeof(float) * double(a.kv_lora_rank + a.qk_rope_head_dim);  // the latent, whole on every rank
  }
  std::vector<double> scratch_per_token(const ModelDesc& m, int i, const RankPlan& p) const override {
    const AttentionSpec& a = m.layers[size_t(i)].attn;
    const WeightShard* s = p.shard(layer_tensor(i, "wo"));
    const double heads = s ? double(s->cols.size() / a.v_head_dim) : double(a.n_heads);
    const double qk = double(a.qk_nope_head_dim + a.qk_rope_head_dim), lat = double(a.kv_lora_rank + a.qk_rope_head_dim);
    const double t1 = double(std::max(a.kv_lora_rank, a.qk_nope_head_dim));
    const double t2 = double(std::max({a.kv_lora_rank, a.v_head_dim, a.q_lora_rank, a.qk_rope_head_dim}));
    return {double(m.dim), heads * qk,  lat, heads * lat, heads * lat, t1, t2, heads * double(a.v_head_dim), double(m.dim),
            heads * double(a.qk_rope_head_dim)};
  }
  std::unique_ptr<Block> build(BlockBuilder& b, int layer) const override {
    return std::make_unique<MlaBlock>(b, layer);
  }
};

}  // namespace

const BlockKind& mla_attention_kind() {
  static const MlaKind kind;
  return kind;
}

}  // namespace hpcinfer
