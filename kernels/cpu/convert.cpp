#include "kernels/cpu/convert.hpp"
#include "kernels/cpu/target_clones.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace hpcinfer::kernels {

float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  // subnormal: normalize
      exp = 127 - 15 + 1;
      while ((man & 0x400u) == 0) {
        man <<= 1;
        --exp;
      }
      man &= 0x3ffu;
      u = sign | (exp << 23) | (man << 13);
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (man << 13);
  } else {
    u = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint32_t sign = (u >> 16) & 0x8000u;
  int32_t exp = int32_t((u >> 23) & 0xffu) - 127 + 15;
  uint32_t man = u & 0x7fffffu;
  if (((u >> 23) & 0xffu) == 0xffu) return uint16_t(sign | 0x7c00u | (man ? 0x200u : 0));
  if (exp >= 31) return uint16_t(sign | 0x7c00u);
  if (exp <= 0) {
    if (exp < -10) return uint16_t(sign);
    man |= 0x800000u;
    uint32_t shift = uint32_t(14 - exp);
    uint32_t half = man >> shift;
    uint32_t rem = man & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1u))) ++half;
    return uint16_t(sign | half);
  }
  uint32_t half = sign | (uint32_t(exp) << 10) | (man >> 13);
  uint32_t rem = man & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) ++half;
  return uint16_t(half);
}

float e4m3fn_to_f32(uint8_t b) {
  const int sign = b >> 7, exp = (b >> 3) & 0xF, mant = b & 7;
  float v;
  if (exp == 0xF && mant == 7) v = std::numeric_limits<float>::quiet_NaN();
  else if (exp == 0) v = std::ldexp(float(mant) / 8.0f, -6);  // subnormal
  else v = std::ldexp(1.0f + float(mant) / 8.0f, exp - 7);
  return sign ? -v : v;
}

namespace {
inline float read_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// bf16 -> f32 is a shift: cloned so it runs as 512/256-bit vectors (loading bf16 weights as int8 or f32 spent 11% of
// its time in the scalar loop).
HPCINFER_TARGET_CLONES("arch=x86-64-v4", "arch=x86-64-v3", "default")
void bf16_row_to_f32(const uint8_t* p, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + i * 2, 2);
    const uint32_t u = uint32_t(h) << 16;
    std::memcpy(out + i, &u, 4);
  }
}
}  // namespace

void dequantize_row(DType dtype, const void* row, int64_t col_begin, int64_t n, float* out) {
  const uint8_t* p = static_cast<const uint8_t*>(row);
  switch (dtype) {
    case DType::f32:
      std::memcpy(out, p + col_begin * 4, size_t(n) * 4);
      return;
    case DType::f16:
      for (int64_t i = 0; i < n; ++i) out[i] = read_f16(p + (col_begin + i) * 2);
      return;
    case DType::bf16:
      bf16_row_to_f32(p + col_begin * 2, n, out);
      return;
    case DType::i8:
      for (int64_t i = 0; i < n; ++i) out[i] = float(int8_t(p[col_begin + i]));
      return;
    case DType::f8_e4m3:
      for (int64_t i = 0; i < n; ++i) out[i] = e4m3fn_to_f32(p[col_begin + i]);
      return;
    case DType::u8:
      throw std::invalid_argument("raw u8 tensors (MXFP4 blocks, scales) have no values of their own: the loader decodes them");
    default:
      break;
  }
  const int64_t block = dtype_block(dtype);
  if (col_begin % block || n % block) {  // a range inside blocks (a tp shard): the covering blocks, cut
    const int64_t b0 = col_begin / block * block;
    const int64_t b1 = (col_begin + n + block - 1) / block * block;
    thread_local std::vector<float> blocks;
    blocks.resize(size_t(b1 - b0));
    dequantize_row(dtype, row, b0, b1 - b0, blocks.data());
    std::memcpy(out, blocks.data() + (col_begin - b0), size_t(n) * sizeof(float));
    return;
  }
  const size_t block_bytes = dtype_row_bytes(dtype, block);
  const uint8_t* b = p + size_t(col_begin / block) * block_bytes;
  for (int64_t blk = 0; blk < n / block; ++blk, b += block_bytes, out += block) {
    switch (dtype) {
      case DType::q6_k: {  // ql[128], qh[64], int8 scales[16], f16 d; x = d * scale[group of 16] * (q - 32)
        // Per half h (128 values): ql[64h + l] holds the low 4 bits of values l (low nibble) and l + 64 (high),
        // ql[64h + 32 + l] of values l + 32 and l + 96; qh[32h + l] their top 2 bits at bits 0, 2, 4, 6 for values
        // l, l + 32, l + 64, l + 96 (l < 32); the scale of value v (0..127 in the half) is scales[8h + v / 16].
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
        const float d = read_f16(b + 208);
        for (int h = 0; h < 2; ++h)
          for (int l = 0; l < 32; ++l) {
            const uint8_t lo = ql[64 * h + l], lo2 = ql[64 * h + 32 + l], hi = qh[32 * h + l];
            const int q[4] = {(lo & 15) | ((hi & 3) << 4), (lo2 & 15) | (((hi >> 2) & 3) << 4),
                              (lo >> 4) | (((hi >> 4) & 3) << 4), (lo2 >> 4) | (((hi >> 6) & 3) << 4)};
            for (int k = 0; k < 4; ++k) {
              const int v = 32 * k + l;
              out[128 * h + v] = d * float(sc[8 * h + v / 16]) * float(q[k] - 32);
            }
          }
        break;
      }
      case DType::q8_0: {  // d (f16), 32 x int8: x = d * q
        float d = read_f16(b);
        for (int i = 0; i < 32; ++i) out[i] = d * float(int8_t(b[2 + i]));
        break;
      }
      case DType::q4_0: {  // d (f16), 16 bytes: low nibbles are values 0..15, high nibbles 16..31; x = d * (q - 8)
        float d = read_f16(b);
        for (int i = 0; i < 16; ++i) {
          out[i] = d * float(int(b[2 + i] & 0x0f) - 8);
          out[i + 16] = d * float(int(b[2 + i] >> 4) - 8);
        }
        break;
      }
      case DType::q4_1: {  // d (f16), m (f16), 16 bytes; x = d * q + m
        float d = read_f16(b), m = read_f16(b + 2);
        for (int i = 0; i < 16; ++i) {
          out[i] = d * float(b[4 + i] & 0x0f) + m;
          out[i + 16] = d * float(b[4 + i] >> 4) + m;
        }
        break;
      }
      default:
        throw std::invalid_argument(std::string("dequantize_row: unsupported dtype ") + dtype_name(dtype));
    }
  }
}

}  // namespace hpcinfer::kernels
