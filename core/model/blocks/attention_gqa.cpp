// Attention kind "gqa": multi-head attention whose query heads share key/value heads in groups (GQA; MQA when one
// kv head; plain MHA when as many kv heads as query heads). Optional q/k/v biases (Qwen2) and o bias (gpt-oss),
// optional per-head q/k RMSNorm before RoPE (Qwen3), optional sliding window, optional sinks (one learned logit per
// head in the softmax denominator, gpt-oss). Its KV cache: [slots, kv heads of this rank, max_ctx, head_dim] per layer
// for K and for V (f32).
//
//   xn = rmsnorm(x, attn_norm)                          [n, dim]
//   q = wq xn (+ bq), k = wk xn (+ bk), v = wv xn (+ bv) [n, q_local], [n, kv_local] x2
//   q, k = rmsnorm per head (q_norm, k_norm)            (qk_norm)
//   q, k = rope(q, k, pos)
//   cache[slot, :, pos] = k, v
//   o = attention(q, cache)                             [n, q_local]
//   x += wo o (+ bo after the anchor)                   [n, dim]; anchor layers.{i}.attn.out (partial over q heads)
// Tensor parallelism: wq/wk/wv rows and wo columns by whole heads (q_head, kv_head units); the strategy decides
// which heads a rank holds, the block reads that from its shards.
#include <cmath>
#include <stdexcept>

#include "core/model/blocks/block.hpp"
#include "core/model/blocks/block_registry.hpp"

namespace hpcinfer {
namespace {

using Axis = ShardRule::Axis;

class GqaBlock final : public Block {
 public:
  GqaBlock(BlockBuilder& b, int layer) : be_(b.backend()), ws_(b.workspace()), anchors_(b.anchors()) {
    const ModelDesc& m = b.model();
    const AttentionSpec& a = m.layers[size_t(layer)].attn;
    dim_ = m.dim;
    eps_ = m.norm_eps;
    hd_ = a.head_dim;
    const WeightShard& q = b.shard(layer_tensor(layer, "wq"));
    const WeightShard& k = b.shard(layer_tensor(layer, "wk"));
    params_.n_heads = q.rows.size() / hd_;
    params_.q_head_begin = q.rows.begin / hd_;
    params_.kv_head_begin = k.rows.begin / hd_;
    params_.group = a.n_heads / a.n_kv_heads;
    params_.window = a.sliding_window;
    params_.scale = 1.0f / std::sqrt(float(hd_));
    params_.cache = {b.slots(), k.rows.size() / hd_, b.max_ctx(), hd_};
    q_local_ = q.rows.size();
    kv_local_ = k.rows.size();
    attn_norm_ = b.vector(layer_tensor(layer, "attn_norm"));
    wq_ = b.matrix(layer_tensor(layer, "wq"));
    wk_ = b.matrix(layer_tensor(layer, "wk"));
    wv_ = b.matrix(layer_tensor(layer, "wv"));
    wo_ = b.matrix(layer_tensor(layer, "wo"));
    if (a.qkv_bias) {
      bq_ = b.vector(layer_tensor(layer, "bq"));
      bk_ = b.vector(layer_tensor(layer, "bk"));
      bv_ = b.vector(layer_tensor(layer, "bv"));
    }
    if (a.qk_norm) {
      q_norm_ = b.vector(layer_tensor(layer, "q_norm"));
      k_norm_ = b.vector(layer_tensor(layer, "k_norm"));
    }
    if (a.o_bias) bo_ = b.vector(layer_tensor(layer, "bo"));
    if (a.sinks) {
      sinks_ = b.vector(layer_tensor(layer, "sinks"));
      params_.sinks = sinks_.f32();
    }
    rope_ = b.rope_tables(a.rope, hd_);
    k_cache_ = DeviceBuffer(be_, params_.cache.floats() * sizeof(float));
    v_cache_ = DeviceBuffer(be_, params_.cache.floats() * sizeof(float));
    out_anchor_ = anchors_.bind(layer_tensor(layer, "attn.out"));
  }

  void forward(float* x, const StageBatch& b) override {
    const int64_t n = b.n;
    float* xn = ws_.get(0, size_t(n * dim_));
    float* q = ws_.get(1, size_t(n * q_local_));
    float* k = ws_.get(2, size_t(n * kv_local_));
    float* v = ws_.get(3, size_t(n * kv_local_));
    float* o = ws_.get(4, size_t(n * q_local_));
    float* proj = ws_.get(5, size_t(n * dim_));
    be_.rmsnorm(x, attn_norm_.f32(), n, dim_, eps_, xn);
    wq_->matmul(xn, n, q);  // [n, q_local]
    wk_->matmul(xn, n, k);  // [n, kv_local]
    wv_->matmul(xn, n, v);  // [n, kv_local]
    if (bq_.get()) {
      be_.add_bias(q, bq_.f32(), n, q_local_);
      be_.add_bias(k, bk_.f32(), n, kv_local_);
      be_.add_bias(v, bv_.f32(), n, kv_local_);
    }
    if (q_norm_.get()) {  // one RMSNorm per head: rows of head_dim
      be_.rmsnorm(q, q_norm_.f32(), n * params_.n_heads, hd_, eps_, q);
      be_.rmsnorm(k, k_norm_.f32(), n * params_.cache.kv_heads, hd_, eps_, k);
    }
    if (rope_.rotary_dim > 0) {
      be_.rope(q, n, params_.n_heads, hd_, b.pos, rope_);
      be_.rope(k, n, params_.cache.kv_heads, hd_, b.pos, rope_);
    }
    be_.kv_store(k, v, n, b.slot, b.pos, params_.cache, k_cache_.f32(), v_cache_.f32());
    be_.attention(q, n, b.slot, b.pos, k_cache_.f32(), v_cache_.f32(), params_, o);
    wo_->matmul(o, n, proj);  // [n, dim]: a partial sum when the heads are split
    float* whole = anchors_.run(out_anchor_, proj, n, dim_);
    if (bo_.get()) be_.add_bias(whole, bo_.f32(), n, dim_);
    be_.add(x, whole, n * dim_);
  }

  size_t weight_bytes() const override {
    size_t b = wq_->bytes() + wk_->bytes() + wv_->bytes() + wo_->bytes() + attn_norm_.bytes();
    for (const DeviceBuffer* v : {&bq_, &bk_, &bv_, &q_norm_, &k_norm_, &bo_, &sinks_}) b += v->bytes();
    return b;
  }
  size_t cache_bytes() const override { return k_cache_.bytes() + v_cache_.bytes(); }

 private:
  Backend& be_;
  Workspace& ws_;
  Anchors& anchors_;
  int64_t dim_ = 0, hd_ = 0, q_local_ = 0, kv_local_ = 0;
  float eps_ = 0;
  AttentionParams params_;
  RopeTables rope_;
  DeviceBuffer attn_norm_, bq_, bk_, bv_, q_norm_, k_norm_;  // [dim], [q_local], [kv_local] x2, [head_dim] x2
  DeviceBuffer bo_, sinks_;                                   // [dim], [local heads]
  std::unique_ptr<PackedMatrix> wq_, wk_, wv_;                // [q_local, dim], [kv_local, dim] x2
  std::unique_ptr<PackedMatrix> wo_;                          // [dim, q_local]
  DeviceBuffer k_cache_, v_cache_;                            // [slots, kv_local heads, max_ctx, head_dim]
  int out_anchor_ = -1;
};

class GqaKind final : public BlockKind {
 public:
  std::string name() const override { return "gqa"; }

  void validate(const ModelDesc& m, int layer) const override {
    const AttentionSpec& a = m.layers[size_t(layer)].attn;
    auto need = [&](bool ok, const std::string& field, const std::string& why) {
      if (!ok) throw std::invalid_argument("layer " + std::to_string(layer) + " attention: " + field + ": " + why);
    };
    need(a.n_heads > 0, "n_heads", "must be positive, got " + std::to_string(a.n_heads));
    need(a.n_kv_heads > 0 && a.n_heads % a.n_kv_heads == 0, "n_kv_heads",
         std::to_string(a.n_kv_heads) + " must be positive and divide n_heads " + std::to_string(a.n_heads));
    need(a.head_dim > 0 && a.head_dim % 2 == 0, "head_dim", "must be positive and even, got " + std::to_string(a.head_dim));
    need(a.sliding_window >= 0, "sliding_window", "must not be negative");
  }

  void declare(const ModelDesc& m, int i, ModelLayout& out) const override {
    const AttentionSpec& a = m.layers[size_t(i)].attn;
    const int64_t hd = a.head_dim, q = a.n_heads * hd, kv = a.n_kv_heads * hd, D = m.dim;
    const ShardRule whole{}, q_rows{Axis::rows, "q_head", hd}, kv_rows{Axis::rows, "kv_head", hd},
        q_cols{Axis::cols, "q_head", hd}, kv_cols{Axis::cols, "kv_head", hd};
    auto add = [&](const char* what, int64_t rows, int64_t cols, const ShardRule& r) {
      out.tensors.push_back({layer_tensor(i, what), i, rows, cols, r});
    };
    add("attn_norm", 1, D, whole);
    add("wq", q, D, q_rows);
    add("wk", kv, D, kv_rows);
    add("wv", kv, D, kv_rows);
    if (a.qkv_bias) {
      add("bq", 1, q, q_cols);
      add("bk", 1, kv, kv_cols);
      add("bv", 1, kv, kv_cols);
    }
    if (a.qk_norm) {
      add("q_norm", 1, hd, whole);
      add("k_norm", 1, hd, whole);
    }
    if (a.sinks) add("sinks", 1, a.n_heads, {Axis::cols, "q_head", 1});
    add("wo", D, q, q_cols);
    if (a.o_bias) add("bo", 1, D, whole);
    out.anchors.push_back({layer_tensor(i, "attn.out"), i, AnchorDecl::Combine::sum, {"q_head"}});
  }

  double cache_bytes_per_token(const ModelDesc& m, int i, const RankPlan& p) const override {
    const AttentionSpec& a = m.layers[size_t(i)].attn;
    return 2.0 * sizeof(float) * double(plan_rows(p, layer_tensor(i, "wk"), a.n_kv_heads * a.head_dim));
  }
  std::vector<double> scratch_per_token(const ModelDesc& m, int i, const RankPlan& p) const override {
    const AttentionSpec& a = m.layers[size_t(i)].attn;
    const double q = double(plan_rows(p, layer_tensor(i, "wq"), a.n_heads * a.head_dim));
    const double kv = double(plan_rows(p, layer_tensor(i, "wk"), a.n_kv_heads * a.head_dim));
    return {double(m.dim), q, kv, kv, q, double(m.dim)};  // the forward's slots: xn, q, k, v, o, proj
  }
  std::unique_ptr<Block> build(BlockBuilder& b, int layer) const override {
    return std::make_unique<GqaBlock>(b, layer);
  }
};

}  // namespace

const BlockKind& gqa_attention_kind() {
  static const GqaKind kind;
  return kind;
}

}  // namespace hpcinfer
