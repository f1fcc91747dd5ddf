#include "core/model/base_source.hpp"

#include "core/formats/mapped_file.hpp"

#include <algorithm>

#include <cstring>
#include <stdexcept>

#include "core/model/model_layout.hpp"

namespace hpcinfer {

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

namespace {
size_t view_bytes(const TensorView& v) { return dtype_row_bytes(v.dtype, v.cols) * size_t(v.rows); }
}  // namespace

// File views are in a read-only mapping: their pages can be read ahead and dropped.
double BaseSource::prefetch(const std::string& canonical, int64_t row_begin, int64_t row_end) const {
  auto it = entries_.find(canonical);
  if (it == entries_.end() || !it->second.file_view.data) return 0.0;
  const TensorView& v = it->second.file_view;  // a permutation reads rows of the same size: the same row range
  row_begin = std::clamp<int64_t>(row_begin, 0, v.rows);
  row_end = std::clamp<int64_t>(row_end, row_begin, v.rows);
  const size_t row = dtype_row_bytes(v.dtype, v.cols);
  return populate_pages(static_cast<const uint8_t*>(v.data) + row * size_t(row_begin), row * size_t(row_end - row_begin));
}

void BaseSource::release(const std::string& canonical) const {
  derived_.erase(canonical);
  auto it = entries_.find(canonical);
  if (it != entries_.end() && it->second.file_view.data)
    drop_pages(it->second.file_view.data, view_bytes(it->second.file_view));
}

void BaseSource::add(const std::string& canonical, const TensorView& v, const std::string& file,
                     const std::string& file_name, int permute_heads) {
  auto [rows, cols] = tensor_shape(desc_, canonical);
  if (v.rows != rows || v.cols != cols)
    throw std::runtime_error(file + ": tensor " + canonical + " (" + file_name + "): shape [" + std::to_string(v.rows) +
                             ", " + std::to_string(v.cols) + "] does not fit the model description: expected [" +
                             std::to_string(rows) + ", " + std::to_string(cols) + "]");
  Entry e{v, file, file_name, nullptr, v};
  if (permute_heads > 0)
    e.derive = [v, permute_heads, head_dim = rows / permute_heads](std::vector<uint8_t>& out) {
      permute_interleaved_to_half(v, permute_heads, head_dim, out);
    };
  e.view.name = canonical;
  entries_[canonical] = std::move(e);
}

void BaseSource::add_derived(const std::string& canonical, DType dtype, const std::string& file,
                             const std::string& file_name, std::function<void(std::vector<uint8_t>&)> derive) {
  auto [rows, cols] = tensor_shape(desc_, canonical);
  Entry e{TensorView{canonical, dtype, nullptr, rows, cols}, file, file_name, std::move(derive), TensorView{}};
  entries_[canonical] = std::move(e);
}

void BaseSource::require_all(const std::string& file,
                             const std::function<std::string(const std::string&)>& file_name) const {
  for (const LogicalTensor& t : stored_tensors(desc_))
    if (!entries_.count(t.name))
      throw std::runtime_error(file + ": tensor " + t.name + " (" + file_name(t.name) + "): missing");
}

TensorView BaseSource::tensor(const std::string& canonical) const {
  auto it = entries_.find(canonical);
  if (it == entries_.end())
    throw std::runtime_error(path_ + ": tensor " + canonical + ": not in this model (" + format() + ")");
  const Entry& e = it->second;
  if (!e.derive) return e.view;
  auto p = derived_.find(canonical);
  if (p == derived_.end()) {
    std::vector<uint8_t> buf;
    e.derive(buf);
    const size_t want = dtype_row_bytes(e.view.dtype, e.view.cols) * size_t(e.view.rows);
    if (buf.size() != want)
      throw std::logic_error(path_ + ": tensor " + canonical + ": derived " + std::to_string(buf.size()) +
                             " bytes, expected " + std::to_string(want));
    p = derived_.emplace(canonical, std::move(buf)).first;
  }
  TensorView v = e.view;
  v.data = p->second.data();
  return v;
}

std::vector<std::string> BaseSource::tensor_names() const {
  std::vector<std::string> out;
  for (const LogicalTensor& t : stored_tensors(desc_))
    if (entries_.count(t.name)) out.push_back(t.name);
  return out;
}

}  // namespace hpcinfer
