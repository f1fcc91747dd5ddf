#include "core/model/mla_tensors.hpp"

#include <cstring>
#include <stdexcept>

namespace hpcinfer {

std::string mla_part(const std::string& c) {
  if (c.rfind("layers.", 0) != 0) return "";
  const std::string tail = c.substr(c.find('.', 7) + 1);
  return tail == "wkv_a" || tail == "wk_pe" || tail == "w_uk_t" || tail == "w_uv" ? tail : "";
}

const char* mla_source(const std::string& part) {
  return part == "wkv_a" || part == "wk_pe" ? "kv_a_proj_with_mqa.weight" : "kv_b_proj.weight";
}

void cut_mla(const TensorView& src, const std::string& part, const AttentionSpec& a, std::vector<uint8_t>& out) {
  if (src.dtype != DType::f32 && src.dtype != DType::f16 && src.dtype != DType::bf16)
    throw std::runtime_error("tensor " + src.name + ": " + dtype_name(src.dtype) + " MLA tensors cannot be cut (f32, f16 or bf16)");
  const size_t es = dtype_row_bytes(src.dtype, 1);
  const int64_t kv = a.kv_lora_rank, rope = a.qk_rope_head_dim, nope = a.qk_nope_head_dim, v = a.v_head_dim,
                H = a.n_heads;
  const auto* s = static_cast<const uint8_t*>(src.data);
  auto at = [&](int64_t r, int64_t c) { return s + (size_t(r) * size_t(src.cols) + size_t(c)) * es; };
  if (part == "wkv_a" || part == "wk_pe") {  // contiguous row blocks
    const int64_t first = part == "wkv_a" ? 0 : kv, rows = part == "wkv_a" ? kv : rope;
    out.assign(at(first, 0), at(first + rows, 0));
    return;
  }
  if (part == "w_uk_t") {  // [H * kv, nope]: out[h * kv + j][c] = src[h * (nope + v) + c][j]
    out.resize(size_t(H * kv * nope) * es);
    for (int64_t h = 0; h < H; ++h)
      for (int64_t j = 0; j < kv; ++j)
        for (int64_t c = 0; c < nope; ++c)
          std::memcpy(out.data() + size_t((h * kv + j) * nope + c) * es, at(h * (nope + v) + c, j), es);
    return;
  }
  out.resize(size_t(H * v * kv) * es);  // w_uv [H * v, kv]: head h's rows nope .. nope + v
  for (int64_t h = 0; h < H; ++h)
    std::memcpy(out.data() + size_t(h * v * kv) * es, at(h * (nope + v) + nope, 0), size_t(v * kv) * es);
}

}  // namespace hpcinfer
