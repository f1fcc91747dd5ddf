// Tensor views shared by loaders and weight formats: non-owning, logical row-major matrices.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace hpcinfer {

// Where a buffer lives: what a backend computes on and what a communicator can move without a copy.
enum class MemorySpace : uint32_t { host, cuda };

inline const char* memory_space_name(MemorySpace m) { return m == MemorySpace::host ? "host" : "cuda"; }

// u8: raw bytes (MXFP4 blocks and E8M0 scales: loaders decode them); f8_e4m3: FP8 E4M3 ("fn": no infinities).
// q6_k: GGUF Q6_K (256 values per block: 6-bit q in 16 groups of 16 with int8 scales, one f16 d; llama.cpp's usual
// output head of its 4- and 5-bit files), read by dequantizing.
enum class DType : uint32_t { f32, f16, bf16, q8_0, q4_0, q4_1, i8, u8, f8_e4m3, q6_k };

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f16: return "f16";
    case DType::bf16: return "bf16";
    case DType::q8_0: return "q8_0";
    case DType::q4_0: return "q4_0";
    case DType::q4_1: return "q4_1";
    case DType::i8: return "i8";
    case DType::u8: return "u8";
    case DType::f8_e4m3: return "f8_e4m3";
    case DType::q6_k: return "q6_k";
  }
  return "?";
}

// Block-quantized GGUF types pack 32 values per block along a row (Q6_K: 256, see dtype_block).
inline constexpr int64_t kQuantBlock = 32;
inline constexpr int64_t kSuperBlock = 256;
// Values per block of a type (1 for element types).
inline int64_t dtype_block(DType t) {
  switch (t) {
    case DType::q8_0:
    case DType::q4_0:
    case DType::q4_1: return kQuantBlock;
    case DType::q6_k: return kSuperBlock;
    default: return 1;
  }
}

// Bytes taken by `n` consecutive values of a row (n a multiple of dtype_block for quantized types).
inline size_t dtype_row_bytes(DType t, int64_t n) {
  switch (t) {
    case DType::f32: return size_t(n) * 4;
    case DType::f16:
    case DType::bf16: return size_t(n) * 2;
    case DType::i8:
    case DType::u8:
    case DType::f8_e4m3: return size_t(n);
    case DType::q8_0: return size_t(n / kQuantBlock) * (2 + 32);      // f16 scale + 32 x int8
    case DType::q4_0: return size_t(n / kQuantBlock) * (2 + 16);      // f16 scale + 32 x 4 bit
    case DType::q4_1: return size_t(n / kQuantBlock) * (2 + 2 + 16);  // f16 scale, f16 min, 32 x 4 bit
    case DType::q6_k: return size_t(n / kSuperBlock) * (128 + 64 + 16 + 2);  // ql, qh, 16 int8 scales, f16 d
  }
  return 0;
}

// A logical [rows x cols] matrix (a vector is rows = 1) stored row-major in `dtype` at `data` (usually inside a
// memory-mapped file). Not owning: valid as long as the model file stays open.
struct TensorView {
  std::string name;  // canonical name (see model.hpp), for error messages
  DType dtype = DType::f32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  const void* row_ptr(int64_t r) const {
    return static_cast<const uint8_t*>(data) + dtype_row_bytes(dtype, cols) * size_t(r);
  }
};

// A half-open index range [begin, end).
struct Range {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
  bool operator==(const Range& o) const { return begin == o.begin && end == o.end; }
};

// Runs fn(begin, end) over disjoint chunks covering [0, n), possibly on several threads, and returns when all are
// done. Implemented by the core (its thread pool, sized by `threads`); plugins use it for their kernels.
class Executor {
 public:
  virtual ~Executor() = default;
  virtual int threads() const = 0;
  virtual void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn) = 0;
};

}  // namespace hpcinfer
