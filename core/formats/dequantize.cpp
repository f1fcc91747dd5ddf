#include "core/formats/dequantize.hpp"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace hpcinfer::formats {

float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;  // +-0
    } else {        // subnormal: value = man * 2^-24
      float f = std::ldexp(float(man), -24);
      std::memcpy(&bits, &f, 4);
      bits |= sign;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);  // inf / NaN
  } else {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u);  // NaN
  if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (a < 0x38800000u) {                                  // below the smallest normal 2^-14: subnormal or 0
    float af;
    std::memcpy(&af, &a, 4);
    float scaled = af * 16777216.0f;  // in units of 2^-24; nearbyint rounds to nearest even
    return uint16_t(sign | uint16_t(std::nearbyint(scaled)));
  }
  uint32_t exp = (a >> 23) - 112;
  uint32_t man = a & 0x7fffffu;
  uint32_t h = (exp << 10) | (man >> 13);
  uint32_t rest = man & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // carry into the exponent is correct rounding
  return uint16_t(sign | h);
}

float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

namespace {
uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
void check_blocks(DType t, int64_t n) {
  if (n % kQuantBlock != 0)
    throw std::invalid_argument(std::string("dequantize_row: ") + dtype_name(t) + " row length " + std::to_string(n) +
                                " is not a multiple of 32");
}
}  // namespace

void dequantize_row(DType dtype, const void* row, int64_t n, float* out) {
  const auto* p = static_cast<const uint8_t*>(row);
  switch (dtype) {
    case DType::f32:
      std::memcpy(out, p, size_t(n) * 4);
      return;
    case DType::f16:
      for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(load_u16(p + 2 * i));
      return;
    case DType::bf16:
      for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(load_u16(p + 2 * i));
      return;
    case DType::q8_0:
      check_blocks(dtype, n);
      for (int64_t b = 0; b < n / kQuantBlock; ++b, p += 34) {
        float d = f16_to_f32(load_u16(p));
        const auto* q = reinterpret_cast<const int8_t*>(p + 2);
        for (int i = 0; i < 32; ++i) out[b * 32 + i] = d * float(q[i]);
      }
      return;
    case DType::q4_0:
      check_blocks(dtype, n);
      for (int64_t b = 0; b < n / kQuantBlock; ++b, p += 18) {
        float d = f16_to_f32(load_u16(p));
        for (int i = 0; i < 16; ++i) {
          out[b * 32 + i] = d * float(int(p[2 + i] & 15) - 8);
          out[b * 32 + i + 16] = d * float(int(p[2 + i] >> 4) - 8);
        }
      }
      return;
    case DType::q4_1:
      check_blocks(dtype, n);
      for (int64_t b = 0; b < n / kQuantBlock; ++b, p += 20) {
        float d = f16_to_f32(load_u16(p));
        float m = f16_to_f32(load_u16(p + 2));
        for (int i = 0; i < 16; ++i) {
          out[b * 32 + i] = d * float(p[4 + i] & 15) + m;
          out[b * 32 + i + 16] = d * float(p[4 + i] >> 4) + m;
        }
      }
      return;
    case DType::i8:
      break;
  }
  throw std::invalid_argument(std::string("dequantize_row: no file layout for dtype ") + dtype_name(dtype));
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
