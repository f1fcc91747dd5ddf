#include "core/model/fused_experts.hpp"

#include <cstring>
#include <stdexcept>

#include "core/formats/microscaling.hpp"

namespace hpcinfer {

bool fused_expert_part(const std::string& c, FusedExpertPart& out) {
  // layers.{i}.experts.{e}.{part}
  if (c.rfind("layers.", 0) != 0) return false;
  const size_t a = c.find('.', 7);
  if (a == std::string::npos || c.compare(a + 1, 8, "experts.") != 0) return false;
  const size_t b = c.find('.', a + 9);
  if (b == std::string::npos) return false;
  const std::string layer = c.substr(7, a - 7), part = c.substr(b + 1);
  out.expert = std::stoi(c.substr(a + 9, b - a - 9));
  out.part = part;
  const std::string pre = "model.layers." + layer + ".mlp.experts.";
  if (part == "w_gate" || part == "w_up") out.fused_name = pre + "gate_up_proj";
  else if (part == "b_gate" || part == "b_up") out.fused_name = pre + "gate_up_proj_bias";
  else if (part == "w_down") out.fused_name = pre + "down_proj";
  else if (part == "b_down") out.fused_name = pre + "down_proj_bias";
  else return false;
  return true;
}

std::vector<int64_t> fused_shape(const std::string& part, int64_t E, int64_t dim, int64_t ff) {
  if (part == "w_gate" || part == "w_up") return {E, dim, 2 * ff};
  if (part == "b_gate" || part == "b_up") return {E, 2 * ff};
  if (part == "w_down") return {E, ff, dim};
  return {E, dim};  // b_down
}

void cut_fused_expert(const TensorView& fused, const FusedExpertPart& p, int64_t dim, int64_t ff,
                      std::vector<uint8_t>& out) {
  const size_t es = dtype_row_bytes(fused.dtype, 1);  // bytes per element (dense dtypes only)
  if (fused.dtype != DType::f32 && fused.dtype != DType::f16 && fused.dtype != DType::bf16)
    throw std::runtime_error("tensor " + fused.name + ": fused experts in " + dtype_name(fused.dtype) +
                             " cannot be cut (f32, f16 or bf16)");
  const auto* src = static_cast<const uint8_t*>(fused.data);
  auto at = [&](int64_t row, int64_t col) { return src + (size_t(row) * size_t(fused.cols) + size_t(col)) * es; };
  const int64_t e = p.expert;
  auto put = [&](size_t i, const uint8_t* from) { std::memcpy(out.data() + i * es, from, es); };
  if (p.part == "w_gate" || p.part == "w_up") {  // [ff, dim]: W[j][a] = fused[e][a][2j (+1)]
    const int64_t odd = p.part == "w_up";
    out.resize(size_t(ff * dim) * es);
    for (int64_t j = 0; j < ff; ++j)
      for (int64_t a = 0; a < dim; ++a) put(size_t(j * dim + a), at(e * dim + a, 2 * j + odd));
  } else if (p.part == "b_gate" || p.part == "b_up") {  // [1, ff]
    const int64_t odd = p.part == "b_up";
    out.resize(size_t(ff) * es);
    for (int64_t j = 0; j < ff; ++j) put(size_t(j), at(e, 2 * j + odd));
  } else if (p.part == "w_down") {  // [dim, ff]: W[a][j] = fused[e][j][a]
    out.resize(size_t(dim * ff) * es);
    for (int64_t a = 0; a < dim; ++a)
      for (int64_t j = 0; j < ff; ++j) put(size_t(a * ff + j), at(e * ff + j, a));
  } else {  // b_down [1, dim]
    out.resize(size_t(dim) * es);
    for (int64_t a = 0; a < dim; ++a) put(size_t(a), at(e, a));
  }
}

std::vector<int64_t> mxfp4_scales_shape(const std::string& part, int64_t E, int64_t dim, int64_t ff) {
  if (part == "w_down") return {E, dim, ff / 32};
  return {E, 2 * ff, dim / 32};
}

void cut_fused_expert_mxfp4(const TensorView& blocks, const TensorView& scales, const FusedExpertPart& p, int64_t dim,
                            int64_t ff, std::vector<uint8_t>& out) {
  const bool down = p.part == "w_down";
  const int64_t rows = down ? dim : ff, cols = down ? ff : dim, file_rows = down ? dim : 2 * ff, groups = cols / 32;
  const auto* b = static_cast<const uint8_t*>(blocks.data);
  const auto* s = static_cast<const uint8_t*>(scales.data);
  out.resize(size_t(rows * cols) * sizeof(float));
  float* o = reinterpret_cast<float*>(out.data());
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t fr = p.expert * file_rows + (down ? r : 2 * r + (p.part == "w_up"));  // the file's row
    formats::dequantize_mxfp4_row(b + fr * groups * 16, s + fr * groups, cols, o + r * cols);
  }
}

}  // namespace hpcinfer
