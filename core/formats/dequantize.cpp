#include "core/formats/dequantize.hpp"

#include "kernels/cpu/convert.hpp"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace hpcinfer::formats {

// The conversions themselves live in kernels/cpu/convert (shared with the weight-format plugins); this file keeps
// the loaders' names and their stricter rules (i8 is not a file type).
float f16_to_f32(uint16_t h) { return kernels::f16_to_f32(h); }
uint16_t f32_to_f16(float f) { return kernels::f32_to_f16(f); }
float bf16_to_f32(uint16_t h) { return kernels::bf16_to_f32(h); }
uint16_t f32_to_bf16(float f) { return kernels::f32_to_bf16(f); }

void dequantize_row(DType dtype, const void* row, int64_t n, float* out) {
  if (dtype == DType::i8)
    throw std::invalid_argument(std::string("dequantize_row: no file layout for dtype ") + dtype_name(dtype));
  const int64_t block = dtype_block(dtype);
  if (n % block)  // a whole row of a block type is whole blocks
    throw std::invalid_argument("dequantize_row: a " + std::string(dtype_name(dtype)) + " row of " + std::to_string(n) +
                                " values is not whole " + std::to_string(block) + "-value blocks");
  kernels::dequantize_row(dtype, row, 0, n, out);
}

void quantize_row_simple(DType dtype, const float* in, int64_t n, void* out) {
  auto* o = static_cast<uint8_t*>(out);
  switch (dtype) {
    case DType::f32:
      std::memcpy(o, in, size_t(n) * 4);
      return;
    case DType::f16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h = f32_to_f16(in[i]);
        std::memcpy(o + 2 * i, &h, 2);
      }
      return;
    case DType::bf16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h = f32_to_bf16(in[i]);
        std::memcpy(o + 2 * i, &h, 2);
      }
      return;
    default:
      break;
  }
  throw std::invalid_argument(std::string("quantize_row_simple: cannot write dtype ") + dtype_name(dtype));
}

}  // namespace hpcinfer::formats
