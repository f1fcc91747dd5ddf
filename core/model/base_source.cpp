#include "core/model/base_source.hpp"

#include <cstring>
#include <stdexcept>

namespace hpcinfer {

std::vector<std::string> canonical_tensor_names(const ModelDesc& d) {
  std::vector<std::string> out{"tok_embeddings"};
  for (int i = 0; i < d.n_layers; ++i) {
    for (const char* w : {"attn_norm", "wq", "wk", "wv"}) out.push_back(layer_tensor(i, w));
    if (d.qkv_bias)
      for (const char* b : {"bq", "bk", "bv"}) out.push_back(layer_tensor(i, b));
    for (const char* w : {"wo", "ffn_norm", "w_gate", "w_up", "w_down"}) out.push_back(layer_tensor(i, w));
  }
  out.push_back("norm");
  if (!d.tied_embeddings) out.push_back("output");
  return out;
}

std::pair<int64_t, int64_t> canonical_shape(const ModelDesc& d, const std::string& name) {
  const int64_t q = int64_t(d.n_heads) * d.head_dim, kv = int64_t(d.n_kv_heads) * d.head_dim;
  if (name == "tok_embeddings" || name == "output") return {d.vocab, d.dim};
  if (name == "norm") return {1, d.dim};
  if (name.rfind("layers.", 0) == 0) {
    const std::string w = name.substr(name.find('.', 7) + 1);
    if (w == "attn_norm" || w == "ffn_norm") return {1, d.dim};
    if (w == "wq") return {q, d.dim};
    if (w == "wk" || w == "wv") return {kv, d.dim};
    if (w == "bq") return {1, q};
    if (w == "bk" || w == "bv") return {1, kv};
    if (w == "wo") return {d.dim, q};
    if (w == "w_gate" || w == "w_up") return {d.hidden_dim, d.dim};
    if (w == "w_down") return {d.dim, d.hidden_dim};
  }
  throw std::invalid_argument("unknown canonical tensor name " + name);
}

void validate_desc(const ModelDesc& d, const std::string& file) {
  auto need = [&](bool ok, const char* key, const std::string& why) {
    if (!ok) throw std::runtime_error(file + ": " + key + ": " + why);
  };
  need(d.dim > 0, "dim", "must be positive, got " + std::to_string(d.dim));
  need(d.hidden_dim > 0, "hidden_dim", "must be positive, got " + std::to_string(d.hidden_dim));
  need(d.n_layers > 0, "n_layers", "must be positive, got " + std::to_string(d.n_layers));
  need(d.n_heads > 0, "n_heads", "must be positive, got " + std::to_string(d.n_heads));
  need(d.n_kv_heads > 0 && d.n_heads % d.n_kv_heads == 0, "n_kv_heads",
       std::to_string(d.n_kv_heads) + " must be positive and divide n_heads " + std::to_string(d.n_heads));
  need(d.head_dim > 0 && d.head_dim % 2 == 0, "head_dim", "must be positive and even, got " + std::to_string(d.head_dim));
  need(d.vocab > 0, "vocab", "must be positive, got " + std::to_string(d.vocab));
  need(d.max_seq_len > 0, "max_seq_len", "must be positive, got " + std::to_string(d.max_seq_len));
}

void permute_interleaved_to_half(const TensorView& in, int n_heads, int64_t head_dim, std::vector<uint8_t>& out) {
  if (int64_t(n_heads) * head_dim != in.rows || head_dim % 2 != 0)
    throw std::runtime_error("tensor " + in.name + ": cannot permute " + std::to_string(in.rows) + " rows as " +
                             std::to_string(n_heads) + " heads of " + std::to_string(head_dim));
  const size_t rb = dtype_row_bytes(in.dtype, in.cols);
  out.resize(rb * size_t(in.rows));
  const auto* src = static_cast<const uint8_t*>(in.data);
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    const int64_t base = h * head_dim;
    for (int64_t j = 0; j < half; ++j) {
      std::memcpy(out.data() + rb * size_t(base + j), src + rb * size_t(base + 2 * j), rb);
      std::memcpy(out.data() + rb * size_t(base + half + j), src + rb * size_t(base + 2 * j + 1), rb);
    }
  }
}

void BaseSource::add(const std::string& canonical, const TensorView& v, const std::string& file,
                     const std::string& file_name, int permute_heads) {
  auto [rows, cols] = canonical_shape(desc_, canonical);
  if (v.rows != rows || v.cols != cols)
    throw std::runtime_error(file + ": tensor " + canonical + " (" + file_name + "): shape [" + std::to_string(v.rows) +
                             ", " + std::to_string(v.cols) + "] does not fit the model description: expected [" +
                             std::to_string(rows) + ", " + std::to_string(cols) + "]");
  Entry e{v, file, file_name, permute_heads};
  e.view.name = canonical;
  entries_[canonical] = std::move(e);
}

void BaseSource::require_all(const std::string& file,
                             const std::function<std::string(const std::string&)>& file_name) const {
  for (const auto& n : canonical_tensor_names(desc_))
    if (!entries_.count(n)) throw std::runtime_error(file + ": tensor " + n + " (" + file_name(n) + "): missing");
}

TensorView BaseSource::tensor(const std::string& canonical) const {
  auto it = entries_.find(canonical);
  if (it == entries_.end())
    throw std::runtime_error(path_ + ": tensor " + canonical + ": not in this model (" + format() + ")");
  const Entry& e = it->second;
  if (e.permute_heads == 0) return e.view;
  auto p = permuted_.find(canonical);
  if (p == permuted_.end()) {
    std::vector<uint8_t> buf;
    permute_interleaved_to_half(e.view, e.permute_heads, desc_.head_dim, buf);
    p = permuted_.emplace(canonical, std::move(buf)).first;
  }
  TensorView v = e.view;
  v.data = p->second.data();
  return v;
}

std::vector<std::string> BaseSource::tensor_names() const {
  std::vector<std::string> out;
  for (const auto& n : canonical_tensor_names(desc_))
    if (entries_.count(n)) out.push_back(n);
  return out;
}

}  // namespace hpcinfer
