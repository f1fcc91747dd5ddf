// Sizes computed from file contents (dimensions, counts, offsets) as products and sums that refuse to wrap around:
// a crafted header must get an error naming what overflowed, never a small wrapped size that passes a bounds check.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>

namespace hpcinfer {

// a * b * ...; throws std::runtime_error("<what>: size overflows (a x b x ...)") when the product exceeds `limit`
// (default: what fits in int64_t) or any factor is negative.
inline int64_t checked_product(std::initializer_list<int64_t> factors, const std::string& what,
                               int64_t limit = INT64_MAX) {
  int64_t p = 1;
  bool bad = false;
  for (int64_t f : factors) {
    if (f < 0 || __builtin_mul_overflow(p, f, &p) || p > limit) {
      bad = true;
      break;
    }
  }
  if (!bad) return p;
  std::string list;
  for (int64_t f : factors) list += (list.empty() ? "" : " x ") + std::to_string(f);
  throw std::runtime_error(what + ": size overflows (" + list + ")");
}

// a + b with the same rule.
inline int64_t checked_sum(int64_t a, int64_t b, const std::string& what) {
  int64_t s = 0;
  if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &s))
    throw std::runtime_error(what + ": size overflows (" + std::to_string(a) + " + " + std::to_string(b) + ")");
  return s;
}

// A 64-bit value read from a file narrowed to int within [lo, hi]; throws "<what>: <v> is out of range [lo, hi]".
inline int narrow_int(int64_t v, int64_t lo, int64_t hi, const std::string& what) {
  if (v < lo || v > hi)
    throw std::runtime_error(what + ": " + std::to_string(v) + " is out of range [" + std::to_string(lo) + ", " +
                             std::to_string(hi) + "]");
  return int(v);
}

}  // namespace hpcinfer
