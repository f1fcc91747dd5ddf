#include "core/runtime/model_stage.hpp"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "kernels/cpu/convert.hpp"
#include "core/model/rope.hpp"
#include "core/runtime/packed_cache.hpp"

namespace hpcinfer {

// What the blocks are built from: the plan's shards, packed from the model source on the backend.
class ModelStage::Builder final : public BlockBuilder {
 public:
  Builder(ModelStage& st, const ModelSource& src, const WeightFormat& fmt, PackedCache& cache)
      : st_(st), src_(src), fmt_(fmt), cache_(cache) {}
  const ModelDesc& model() const override { return st_.m_; }
  Backend& backend() override { return st_.be_; }
  Anchors& anchors() override { return *st_.anchors_; }
  Workspace& workspace() override { return *st_.ws_; }
  int slots() const override { return st_.n_slots_; }
  int max_ctx() const override { return st_.max_ctx_; }

  const WeightShard& shard(const std::string& name) const override {
    const WeightShard* s = st_.plan_.shard(name);
    if (!s) throw std::runtime_error(src_.path() + ": the plan holds no shard of tensor " + name + " on this rank");
    return *s;
  }
  bool holds(const std::string& name) const override { return st_.plan_.shard(name) != nullptr; }
  // The head of a tied model reads the embedding table.
  std::string source_name(const std::string& name) const {
    return name == "output" && st_.m_.tied_embeddings ? "tok_embeddings" : name;
  }
  std::unique_ptr<PackedMatrix> matrix(const std::string& name) override {
    const WeightShard& s = shard(name);
    if (auto p = from_cache(name, s.rows, s.cols)) return p;
    st_.weight_read_s_ += src_.prefetch(source_name(name), s.rows.begin, s.rows.end);  // file -> memory, timed apart from the packing
    auto p = fmt_.pack(src_.tensor(source_name(name)), s.rows, s.cols, st_.be_);
    st_.weight_bytes_ += p->bytes();
    src_.release(source_name(name));
    cache_.add(PackedCache::matrix_name(name, s.rows, s.cols), *p);
    return p;
  }
  std::unique_ptr<PackedMatrix> matrix_rows(const std::string& name, Range sub) override {
    const WeightShard& s = shard(name);
    if (sub.begin < 0 || sub.end > s.rows.size() || sub.begin >= sub.end)
      throw std::runtime_error(src_.path() + ": rows [" + std::to_string(sub.begin) + ", " + std::to_string(sub.end) +
                               ") outside this rank's " + std::to_string(s.rows.size()) + " rows of tensor " + name);
    const Range rows{s.rows.begin + sub.begin, s.rows.begin + sub.end};
    if (auto p = from_cache(name, rows, s.cols)) return p;
    auto p = fmt_.pack(src_.tensor(source_name(name)), rows, s.cols, st_.be_);
    st_.weight_bytes_ += p->bytes();
    cache_.add(PackedCache::matrix_name(name, rows, s.cols), *p);
    return p;
  }
  // The shard mapped from the packed-weight cache, or nullptr.
  std::unique_ptr<PackedMatrix> from_cache(const std::string& name, Range rows, Range cols) {
    auto p = cache_.find(PackedCache::matrix_name(name, rows, cols), rows, cols, st_.be_);
    if (p) st_.weight_bytes_ += p->bytes(), ++hits_;
    else ++misses_;
    return p;
  }
  int hits_ = 0, misses_ = 0;
  DeviceBuffer vector(const std::string& name) override {
    const WeightShard& s = shard(name);
    const TensorView v = src_.tensor(source_name(name));
    const int64_t n = v.rows * v.cols;  // norms/biases are vectors: [1, n] or [n, 1]
    if (s.cols.end > n)
      throw std::runtime_error(src_.path() + ": tensor " + name + " has " + std::to_string(n) + " values, plan wants " +
                               std::to_string(s.cols.end));
    std::vector<float> all(static_cast<size_t>(n));
    kernels::dequantize_row(v.dtype, v.data, 0, n, all.data());
    DeviceBuffer out(st_.be_, size_t(s.cols.size()) * sizeof(float));
    st_.be_.copy_to_device(out.get(), all.data() + s.cols.begin, out.bytes());
    st_.weight_bytes_ += out.bytes();
    src_.release(source_name(name));
    return out;
  }
  DeviceBuffer f32_matrix(const std::string& name) override {
    const WeightShard& s = shard(name);
    const TensorView v = src_.tensor(source_name(name));
    std::vector<float> host(size_t(s.rows.size() * s.cols.size()));
    for (int64_t r = 0; r < s.rows.size(); ++r)
      kernels::dequantize_row(v.dtype, v.row_ptr(s.rows.begin + r), s.cols.begin, s.cols.size(),
                              host.data() + r * s.cols.size());
    DeviceBuffer out(st_.be_, host.size() * sizeof(float));
    st_.be_.copy_to_device(out.get(), host.data(), out.bytes());
    st_.weight_bytes_ += out.bytes();
    return out;
  }
  RopeTables rope_tables(const RopeSpec& r, int64_t head_dim) override {
    const RopeTablesHost t = make_rope_tables(r, head_dim, st_.max_ctx_);
    // Same spec, same tables: key on everything the tables depend on.
    char key[320];
    std::snprintf(key, sizeof key, "%s|%.9g|%.9g|%.9g|%.9g|%d|%.9g|%.9g|%.9g|%.9g|%.9g|%d|%lld|%d|%lld", r.type.c_str(),
                  double(r.theta), double(r.factor), double(r.low_freq_factor), double(r.high_freq_factor),
                  r.original_max_position, double(r.beta_fast), double(r.beta_slow), double(r.mscale),
                  double(r.mscale_all_dim), double(r.attention_factor), int(r.truncate), (long long)t.rotary_dim,
                  int(r.interleaved), (long long)head_dim);
    auto it = st_.rope_.find(key);
    if (it == st_.rope_.end()) {
      DeviceBuffer c(st_.be_, t.cos.size() * sizeof(float)), s(st_.be_, t.sin.size() * sizeof(float));
      st_.be_.copy_to_device(c.get(), t.cos.data(), c.bytes());
      st_.be_.copy_to_device(s.get(), t.sin.data(), s.bytes());
      it = st_.rope_.emplace(key, std::make_pair(std::move(c), std::move(s))).first;
    }
    return {it->second.first.f32(), it->second.second.f32(), t.rotary_dim, t.max_pos, t.interleaved};
  }

 private:
  ModelStage& st_;
  const ModelSource& src_;
  const WeightFormat& fmt_;
  PackedCache& cache_;
};

ModelStage::ModelStage(const ModelSource& src, const RankPlan& plan, const WeightFormat& fmt, Backend& be,
                       std::map<std::string, Communicator*> groups, int n_slots, int max_ctx,
                       const std::string& weights_cache)
    : m_(src.desc()), plan_(plan), be_(be), n_slots_(n_slots), max_ctx_(max_ctx) {
  if (!fmt.supports_backend(be.name()))
    throw std::invalid_argument("weights plugin '" + fmt.name() + "' does not pack for the " + be.name() + " backend");
  anchors_ = std::make_unique<AnchorSteps>(plan_, be_, std::move(groups));
  ws_ = std::make_unique<Workspace>(be_);
  PackedCache cache(be.memory_space() == MemorySpace::host ? weights_cache : "", src.path(), fmt, plan_);
  weight_read_s_ += cache.read_s();
  Builder b(*this, src, fmt, cache);
  if (plan_.has_embedding) {
    embedding_ = b.matrix("tok_embeddings");
    embed_row0_ = b.shard("tok_embeddings").rows.begin;
    embed_anchor_ = anchors_->bind("embed.out");
  }
  for (int l = plan_.layer_begin; l < plan_.layer_end; ++l) {
    const LayerSpec& spec = m_.layers.at(size_t(l));
    blocks_.push_back(block_kind("attention", spec.attn.kind).build(b, l));
    blocks_.push_back(block_kind("ffn", spec.ffn.kind).build(b, l));
    range_names_.push_back("layers." + std::to_string(l) + ".attn");
    range_names_.push_back("layers." + std::to_string(l) + ".ffn");
  }
  if (plan_.has_head) {
    final_norm_ = b.vector("norm");
    const WeightShard& h = b.shard("output");
    const WeightShard* e = plan_.shard("tok_embeddings");
    const bool share = m_.tied_embeddings && embedding_ && e && e->rows == h.rows && e->cols == h.cols;
    if (!share) output_ = b.matrix("output");  // tied and the same shard: one copy serves both
    head_anchor_ = anchors_->bind("head.logits");
  }
  if (cache.enabled()) {
    weight_cache_file_ = cache.file();
    weight_cache_ = b.misses_ == 0 ? "hit" : b.hits_ > 0 ? "partial" : "miss";
    weight_cache_write_s_ = cache.save();
  }
  anchors_->check_all_bound();
  // Graphs are a device backend's; a stage that communicates inside its pass is not recorded.
  recordable_ = be_.memory_space() != MemorySpace::host && !anchors_->any_bound();
  for (const auto& blk : blocks_) recordable_ = recordable_ && blk->recordable();
}

ModelStage::~ModelStage() = default;

size_t ModelStage::streamed_weight_bytes() const {
  const bool tied_head = plan_.has_head && !output_;
  return weight_bytes_ - (embedding_ && !tied_head ? embedding_->bytes() : 0);
}

size_t ModelStage::kv_bytes() const {
  size_t b = 0;
  for (const auto& blk : blocks_) b += blk->cache_bytes();
  return b;
}

float* ModelStage::hidden(int64_t n) {
  hidden_.reserve(be_, size_t(std::max<int64_t>(n, 1) * m_.dim) * sizeof(float));
  return hidden_.f32();
}

const int* ModelStage::upload_ints(size_t slot, const std::vector<int>& v) {
  ints_[slot].reserve(be_, std::max<size_t>(v.size(), 1) * sizeof(int));
  be_.copy_to_device(ints_[slot].get(), v.data(), v.size() * sizeof(int));
  return ints_[slot].i32();
}

void ModelStage::embed(const TokenBatch& b) {
  for (size_t i = 0; i < b.tokens.size(); ++i)
    if (b.tokens[i] < 0 || b.tokens[i] >= m_.vocab)
      throw std::runtime_error("token id " + std::to_string(b.tokens[i]) + " outside the vocabulary of " +
                               std::to_string(m_.vocab));
  const int64_t n = int64_t(b.tokens.size());
  float* x = hidden(n);
  embedding_->gather_rows(upload_ints(0, b.tokens), n, embed_row0_, x);  // [n, dim]: zeros for other ranks' rows
  anchors_->run(embed_anchor_, x, n, m_.dim);
}

void ModelStage::forward_layers(const TokenBatch& b) {
  const int n = b.size();
  for (int i = 0; i < n; ++i) {
    if (b.slot[size_t(i)] < 0 || b.slot[size_t(i)] >= n_slots_ || b.pos[size_t(i)] < 0 || b.pos[size_t(i)] >= max_ctx_)
      throw std::runtime_error("batch token " + std::to_string(i) + ": slot " + std::to_string(b.slot[size_t(i)]) +
                               " position " + std::to_string(b.pos[size_t(i)]) + " outside the KV cache (" +
                               std::to_string(n_slots_) + " slots x " + std::to_string(max_ctx_) + " positions)");
  }
  const StageBatch sb{n, upload_ints(1, b.slot), upload_ints(2, b.pos), b.slot.data(), b.pos.data()};
  float* x = hidden(n);
  auto layers = [&] {
    for (size_t i = 0; i < blocks_.size(); ++i) {
      if (tap_ && i % 2 == 0) tap_(plan_.layer_begin + int(i / 2), x, n);
      be_.range_push(range_names_[i].c_str());  // NVTX ranges on cuda (nsys); nothing on the cpu backend
      blocks_[i]->forward(x, sb);
      be_.range_pop();
    }
  };
  // A decode step (one token from each of n sequences) has one shape per n: a device backend replays it as a
  // recorded graph (slots and positions are read from device memory, uploaded above).
  if (recordable_ && !tap_ && n > 0) {
    std::vector<int> slots = b.slot;
    std::sort(slots.begin(), slots.end());
    if (std::adjacent_find(slots.begin(), slots.end()) == slots.end() && be_.run_recorded(uint64_t(n), layers)) return;
  }
  layers();
}

const float* ModelStage::head_on_device(const std::vector<int>& rows) {
  const int64_t D = m_.dim, m = int64_t(rows.size());
  head_x_.reserve(be_, size_t(m * D) * sizeof(float));
  be_.select_rows(hidden_.f32(), D, upload_ints(3, rows), m, head_x_.f32());
  be_.rmsnorm(head_x_.f32(), final_norm_.f32(), m, D, m_.norm_eps, head_x_.f32());
  const PackedMatrix& out = output_ ? *output_ : *embedding_;
  head_logits_.reserve(be_, size_t(m * out.rows()) * sizeof(float));
  out.matmul(head_x_.f32(), m, head_logits_.f32());  // [m, vocab shard]
  return anchors_->run(head_anchor_, head_logits_.f32(), m, out.rows());  // [m, vocab]
}

void ModelStage::head(const std::vector<int>& rows, float* logits) {
  if (rows.empty()) return;
  const float* all = head_on_device(rows);
  be_.copy_to_host(logits, all, rows.size() * size_t(m_.vocab) * sizeof(float));
}

void ModelStage::head_candidates(const std::vector<int>& rows, const float* temps, int64_t count, float* max,
                                 double* sum, float* cand_logits, int* cand_ids) {
  if (rows.empty()) return;
  const float* all = head_on_device(rows);
  be_.sampling_candidates(all, int64_t(rows.size()), m_.vocab, temps, count, max, sum, cand_logits, cand_ids);
}

void ModelStage::head_argmax(const std::vector<int>& rows, int* ids) {
  if (rows.empty()) return;
  const float* all = head_on_device(rows);
  ids_out_.reserve(be_, rows.size() * sizeof(int));
  be_.argmax(all, int64_t(rows.size()), m_.vocab, ids_out_.i32());
  be_.copy_to_host(ids, ids_out_.get(), rows.size() * sizeof(int));
}

}  // namespace hpcinfer
