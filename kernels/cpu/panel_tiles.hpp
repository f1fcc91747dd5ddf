// The walk every integer panel kernel (int8 and int4, VNNI and AVX2) makes over its work: weight rows [r0, r1) panel
// by panel, activation rows in chunks that stay in L2 while the thread's panels stream past them, MR activation rows
// per tile and the rest one at a time. Included by the per-ISA translation units; internal linkage on purpose (each
// keeps its own copy, compiled for its ISA).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/matmul.hpp"

namespace hpcinfer::kernels {
namespace {

// tile(std::integral_constant<int, M>, i, panel, row, out) computes out[k][0..16) = the panel's 16 rows (weight rows
// row .. row + 15) against activation rows i + k, k < M (M = MR or 1); the walk stores the valid ones into y[., row..].
template <int MR, typename Tile>
inline __attribute__((always_inline)) void walk_panel_tiles(int64_t n, int64_t act_row_bytes, const uint8_t* panels,
                                                            int64_t panel_bytes, float* y, int64_t ldy, int64_t r0,
                                                            int64_t r1, const Tile& tile) {
  const int64_t chunk = std::max<int64_t>(MR, (int64_t(256) << 10) / std::max<int64_t>(act_row_bytes, 1) / MR * MR);
  for (int64_t i0 = 0; i0 < n; i0 += chunk) {
    const int64_t i1 = std::min(n, i0 + chunk);
    for (int64_t row = r0; row < r1; row += kPanelRows) {
      const uint8_t* panel = panels + (row / kPanelRows) * panel_bytes;
      const int64_t valid = std::min(kPanelRows, r1 - row);
      auto emit = [&](auto m, int64_t i) {
        constexpr int M = decltype(m)::value;
        float out[M][kPanelRows];
        tile(m, i, panel, row, out);
        for (int k = 0; k < M; ++k) std::memcpy(y + (i + k) * ldy + row, out[k], size_t(valid) * sizeof(float));
      };
      int64_t i = i0;
      for (; i + MR <= i1; i += MR) emit(std::integral_constant<int, MR>{}, i);
      for (; i < i1; ++i) emit(std::integral_constant<int, 1>{}, i);
    }
  }
}

}  // namespace
}  // namespace hpcinfer::kernels
