#include "core/runtime/llama_stage.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "kernels/cpu/convert.hpp"

namespace hpcinfer {

LlamaStage::LlamaStage(const ModelSource& src, const RankPlan& plan, const WeightFormat& fmt, Executor& ex,
                       Communicator* tp_comm, int n_slots, int max_ctx)
    : m_(src.desc()), plan_(plan), ex_(ex), tp_comm_(tp_comm), n_slots_(n_slots), max_ctx_(max_ctx) {
  const int64_t hd = m_.head_dim;
  q_local_ = plan.q_heads.size() * hd;
  kv_local_ = plan.kv_heads.size() * hd;
  ffn_local_ = plan.ffn.size();
  const int n_local = plan.layer_end - plan.layer_begin;
  layers_.resize(size_t(n_local));
  for (const WeightShard& s : plan.shards) {
    const std::string& t = s.tensor;
    if (t == "tok_embeddings" && plan.has_embedding && !embedding_) {  // first stage: the embedding table
      embedding_ = pack(src, s, fmt);
      continue;
    }
    if (t == "tok_embeddings" || t == "output") {  // last stage: the output head (tied: the embedding again)
      if (t == "tok_embeddings" && embedding_ && s.rows == Range{0, m_.vocab}) continue;  // share one copy
      output_ = pack(src, s, fmt);
      continue;
    }
    if (t == "norm") {
      final_norm_ = vector_of(src, t, s.cols);
      continue;
    }
    if (t.rfind("layers.", 0) != 0) continue;
    const size_t dot = t.find('.', 7);
    const int layer = std::stoi(t.substr(7, dot - 7));
    const std::string what = t.substr(dot + 1);
    Layer& L = layers_.at(size_t(layer - plan.layer_begin));
    if (what == "attn_norm") L.attn_norm = vector_of(src, t, s.cols);
    else if (what == "ffn_norm") L.ffn_norm = vector_of(src, t, s.cols);
    else if (what == "bq") L.bq = vector_of(src, t, s.cols);
    else if (what == "bk") L.bk = vector_of(src, t, s.cols);
    else if (what == "bv") L.bv = vector_of(src, t, s.cols);
    else if (what == "wq") L.wq = pack(src, s, fmt);
    else if (what == "wk") L.wk = pack(src, s, fmt);
    else if (what == "wv") L.wv = pack(src, s, fmt);
    else if (what == "wo") L.wo = pack(src, s, fmt);
    else if (what == "w_gate") L.w_gate = pack(src, s, fmt);
    else if (what == "w_up") L.w_up = pack(src, s, fmt);
    else if (what == "w_down") L.w_down = pack(src, s, fmt);
    else throw std::runtime_error(src.path() + ": plan names unknown tensor " + t);
  }
  if (plan.has_head && !output_ && !embedding_) {
    throw std::runtime_error(src.path() + ": no output head tensor for the last stage");
  }
  for (int i = 0; i < n_local; ++i) {
    const Layer& L = layers_[size_t(i)];
    if (!L.wq || !L.wk || !L.wv || !L.wo || !L.w_gate || !L.w_up || !L.w_down || L.attn_norm.empty() ||
        L.ffn_norm.empty())
      throw std::runtime_error(src.path() + ": layer " + std::to_string(plan.layer_begin + i) +
                               " is missing tensors in the plan");
  }
  rope_ = kernels::make_rope_table(hd, max_ctx, m_.rope_theta, m_.rope_scaling);
  kv_k_.assign(size_t(n_local), std::vector<float>(size_t(n_slots) * size_t(max_ctx) * size_t(kv_local_)));
  kv_v_ = kv_k_;
}

std::unique_ptr<PackedMatrix> LlamaStage::pack(const ModelSource& src, const WeightShard& s, const WeightFormat& fmt) {
  TensorView v = src.tensor(s.tensor);
  auto p = fmt.pack(v, s.rows, s.cols);
  weight_bytes_ += p->bytes();
  return p;
}

std::vector<float> LlamaStage::vector_of(const ModelSource& src, const std::string& name, Range cols) const {
  TensorView v = src.tensor(name);
  const int64_t n = v.rows * v.cols;  // norms/biases are vectors: [1, n] or [n, 1]
  if (cols.end > n) throw std::runtime_error(src.path() + ": tensor " + name + " has " + std::to_string(n) + " values, plan wants " + std::to_string(cols.end));
  std::vector<float> out(static_cast<size_t>(n));
  kernels::dequantize_row(v.dtype, v.data, 0, n, out.data());
  return std::vector<float>(out.begin() + cols.begin, out.begin() + cols.end);
}

void LlamaStage::embed(const std::vector<int>& tokens, float* x) const {
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= m_.vocab)
      throw std::runtime_error("token id " + std::to_string(tokens[i]) + " outside the vocabulary of " +
                               std::to_string(m_.vocab));
    embedding_->dequantize_row(tokens[i], x + i * size_t(m_.dim));
  }
}

void LlamaStage::allreduce(float* data, size_t count) {
  if (!tp_comm_ || plan_.tp_group.size() <= 1) return;
  const auto t = std::chrono::steady_clock::now();
  tp_comm_->allreduce_sum_f32(data, count);
  allreduce_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

void LlamaStage::attention(int li, const float* q, float* out, const TokenBatch& b) {
  const int n = b.size();
  const int64_t hd = m_.head_dim;
  const int nh = int(plan_.q_heads.size());
  const int group = m_.n_heads / m_.n_kv_heads;  // query heads per kv head
  const float* K = kv_k_[size_t(li)].data();
  const float* V = kv_v_[size_t(li)].data();
  // Work items: (token, up to kHeadsPerItem consecutive local query heads of one kv head), so each cached key and
  // value row is read once per item rather than once per head, with items enough to share among threads.
  constexpr int kHeadsPerItem = 4;
  const int chunks_per_kv = (group + kHeadsPerItem - 1) / kHeadsPerItem;
  const int kv_first = int(plan_.q_heads.begin) / group, kv_count = (int(plan_.q_heads.end) - 1) / group - kv_first + 1;
  const int items_per_token = kv_count * chunks_per_kv;
  auto heads = [&](int64_t w0, int64_t w1) {
    std::vector<float> scores(static_cast<size_t>(max_ctx_) * kHeadsPerItem);
    for (int64_t w = w0; w < w1; ++w) {
      const int i = int(w / items_per_token), item = int(w % items_per_token);
      const int kv = kv_first + item / chunks_per_kv;  // global kv head
      const int g0 = std::max(kv * group + (item % chunks_per_kv) * kHeadsPerItem, int(plan_.q_heads.begin));
      const int g1 = std::min({kv * group + (item % chunks_per_kv + 1) * kHeadsPerItem, (kv + 1) * group,
                               int(plan_.q_heads.end)});
      if (g0 >= g1) continue;
      const int h = g0 - int(plan_.q_heads.begin);  // local index of the first query head
      const size_t base = kv_row(b.slot[size_t(i)], kv - int(plan_.kv_heads.begin), 0);
      kernels::attend_heads(q + size_t(i) * size_t(q_local_) + size_t(h) * size_t(hd), g1 - g0, K + base, V + base,
                            b.pos[size_t(i)] + 1, hd, hd, scores.data(),
                            out + size_t(i) * size_t(q_local_) + size_t(h) * size_t(hd));
    }
  };
  // Small work on the calling thread (see plugins/common/shard_storage.hpp, for_row_blocks, for why).
  int64_t ctx_sum = 0;
  for (int i = 0; i < n; ++i) ctx_sum += b.pos[size_t(i)] + 1;
  if (ctx_sum * nh * hd < (int64_t(1) << 16))
    heads(0, int64_t(n) * items_per_token);
  else
    ex_.parallel_for(int64_t(n) * items_per_token, heads);
}

void LlamaStage::forward_layers(float* x, const TokenBatch& b) {
  const int n = b.size();
  const int64_t D = m_.dim, hd = m_.head_dim;
  for (int i = 0; i < n; ++i) {
    if (b.slot[size_t(i)] < 0 || b.slot[size_t(i)] >= n_slots_ || b.pos[size_t(i)] < 0 || b.pos[size_t(i)] >= max_ctx_)
      throw std::runtime_error("batch token " + std::to_string(i) + ": slot " + std::to_string(b.slot[size_t(i)]) +
                               " position " + std::to_string(b.pos[size_t(i)]) + " outside the KV cache (" +
                               std::to_string(n_slots_) + " slots x " + std::to_string(max_ctx_) + " positions)");
  }
  auto grow = [](std::vector<float>& v, size_t need) { if (v.size() < need) v.resize(need); };
  grow(xb_, size_t(n) * D);
  grow(q_, size_t(n) * q_local_);
  grow(k_, size_t(n) * kv_local_);
  grow(v_, size_t(n) * kv_local_);
  grow(att_, size_t(n) * q_local_);
  grow(proj_, size_t(n) * D);
  grow(gate_, size_t(n) * ffn_local_);
  grow(up_, size_t(n) * ffn_local_);
  for (int li = 0; li < int(layers_.size()); ++li) {
    Layer& L = layers_[size_t(li)];
    // Attention block: x += wo(attention(rope(wq xn), rope(wk xn), wv xn)), xn = rmsnorm(x)
    for (int i = 0; i < n; ++i) kernels::rmsnorm(x + i * D, L.attn_norm.data(), D, m_.norm_eps, xb_.data() + i * D);
    L.wq->matmul(xb_.data(), n, q_.data(), ex_);  // [n, q_local]
    L.wk->matmul(xb_.data(), n, k_.data(), ex_);  // [n, kv_local]
    L.wv->matmul(xb_.data(), n, v_.data(), ex_);  // [n, kv_local]
    for (int i = 0; i < n; ++i) {
      float* qi = q_.data() + size_t(i) * q_local_;
      float* ki = k_.data() + size_t(i) * kv_local_;
      float* vi = v_.data() + size_t(i) * kv_local_;
      if (!L.bq.empty()) {
        for (int64_t j = 0; j < q_local_; ++j) qi[j] += L.bq[size_t(j)];
        for (int64_t j = 0; j < kv_local_; ++j) ki[j] += L.bk[size_t(j)], vi[j] += L.bv[size_t(j)];
      }
      kernels::rope_rotate_half(qi, int(plan_.q_heads.size()), hd, b.pos[size_t(i)], rope_);
      kernels::rope_rotate_half(ki, int(plan_.kv_heads.size()), hd, b.pos[size_t(i)], rope_);
      for (int kvh = 0; kvh < int(plan_.kv_heads.size()); ++kvh) {
        const size_t at = kv_row(b.slot[size_t(i)], kvh, b.pos[size_t(i)]);
        std::copy(ki + kvh * hd, ki + (kvh + 1) * hd, kv_k_[size_t(li)].data() + at);
        std::copy(vi + kvh * hd, vi + (kvh + 1) * hd, kv_v_[size_t(li)].data() + at);
      }
    }
    attention(li, q_.data(), att_.data(), b);
    L.wo->matmul(att_.data(), n, proj_.data(), ex_);  // [n, dim], a partial sum under tp
    allreduce(proj_.data(), size_t(n) * D);
    for (size_t j = 0; j < size_t(n) * D; ++j) x[j] += proj_[j];
    // Feed-forward block: x += w_down(silu(w_gate xn) * w_up xn), xn = rmsnorm(x)
    for (int i = 0; i < n; ++i) kernels::rmsnorm(x + i * D, L.ffn_norm.data(), D, m_.norm_eps, xb_.data() + i * D);
    L.w_gate->matmul(xb_.data(), n, gate_.data(), ex_);  // [n, ffn_local]
    L.w_up->matmul(xb_.data(), n, up_.data(), ex_);      // [n, ffn_local]
    kernels::silu_mul(gate_.data(), up_.data(), int64_t(n) * ffn_local_, gate_.data());
    L.w_down->matmul(gate_.data(), n, proj_.data(), ex_);  // [n, dim], a partial sum under tp
    allreduce(proj_.data(), size_t(n) * D);
    for (size_t j = 0; j < size_t(n) * D; ++j) x[j] += proj_[j];
  }
}

void LlamaStage::head(const float* x, const std::vector<int>& rows, float* logits) {
  const int64_t D = m_.dim;
  const int m = int(rows.size());
  if (m == 0) return;
  std::vector<float> xn(static_cast<size_t>(m) * size_t(D));
  for (int r = 0; r < m; ++r) kernels::rmsnorm(x + size_t(rows[size_t(r)]) * D, final_norm_.data(), D, m_.norm_eps, xn.data() + size_t(r) * D);
  const PackedMatrix& out = output_ ? *output_ : *embedding_;
  out.matmul(xn.data(), m, logits, ex_);  // [m, vocab]
}

}  // namespace hpcinfer
