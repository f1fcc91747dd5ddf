// example_f32: a weights format that keeps every weight as f32 (f16 and bf16 sources are widened on pack()).
// A complete, minimal WeightFormat for plugin authors to copy; hpcinfer's own f32/bf16/int8 formats are faster.
#include <hpcinfer/backend.hpp>
#include <hpcinfer/plugin.hpp>
#include <hpcinfer/weight_format.hpp>

#include <cstring>
#include <stdexcept>
#include <vector>

namespace {

using hpcinfer::DType;
using hpcinfer::Range;

float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf / nan
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);  // normal: rebias 15 -> 127
  } else if (mant == 0) {
    bits = sign;  // +-0
  } else {  // subnormal: normalize
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400) == 0);
    bits = sign | uint32_t(112 - e) << 23 | ((mant & 0x3ff) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_to_f32(uint16_t b) {
  uint32_t bits = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// The packed shard: w[r * cols + c] = W[rows.begin + r, cols.begin + c], f32, in host memory; its matmul runs on the
// cpu backend's thread team.
class F32Matrix final : public hpcinfer::PackedMatrix {
 public:
  F32Matrix(int64_t rows, int64_t cols, hpcinfer::Executor& ex) : rows_(rows), cols_(cols), ex_(ex), w_(size_t(rows * cols)) {}
  int64_t rows() const override { return rows_; }
  int64_t cols() const override { return cols_; }
  size_t bytes() const override { return w_.size() * sizeof(float); }
  float* data() { return w_.data(); }

  // y[n, rows] = x[n, cols] * W^T; each task computes a block of output features for all n tokens.
  void matmul(const float* x, int64_t n, float* y) const override {
    ex_.parallel_for(rows_, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const float* w = w_.data() + r * cols_;
        for (int64_t i = 0; i < n; ++i) {
          const float* xi = x + i * cols_;
          float acc = 0.0f;
          for (int64_t c = 0; c < cols_; ++c) acc += xi[c] * w[c];
          y[i * rows_ + r] = acc;
        }
      }
    });
  }
  // Embedding lookup: rows outside this shard are zeros (another rank holds them).
  void gather_rows(const int* ids, int64_t n, int64_t offset, float* out) const override {
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = ids[i] - offset;
      for (int64_t c = 0; c < cols_; ++c) out[i * cols_ + c] = r >= 0 && r < rows_ ? w_[size_t(r * cols_ + c)] : 0.0f;
    }
  }
  void dequantize_row(int64_t r, float* out) const override {
    if (r < 0 || r >= rows_)
      throw std::out_of_range("example_f32: row " + std::to_string(r) + " outside [0, " + std::to_string(rows_) + ")");
    std::memcpy(out, w_.data() + r * cols_, size_t(cols_) * sizeof(float));
  }

 private:
  int64_t rows_, cols_;
  hpcinfer::Executor& ex_;
  std::vector<float> w_;  // [rows_, cols_]
};

class ExampleF32 final : public hpcinfer::WeightFormat {
 public:
  std::string name() const override { return "example_f32"; }
  bool accepts(DType t) const override { return t == DType::f32 || t == DType::f16 || t == DType::bf16; }
  bool supports_backend(const std::string& backend) const override { return backend == "cpu"; }
  size_t bytes(int64_t rows, int64_t cols) const override { return size_t(rows * cols) * sizeof(float); }

  std::unique_ptr<hpcinfer::PackedMatrix> pack(const hpcinfer::TensorView& src, Range rows, Range cols,
                                               hpcinfer::Backend& backend) const override {
    hpcinfer::Executor* ex = backend.host_threads();
    if (backend.name() != "cpu" || !ex)
      throw std::invalid_argument("example_f32: packs for the cpu backend only, not " + backend.name());
    if (!accepts(src.dtype))
      throw std::invalid_argument("example_f32: " + src.name + " is " + hpcinfer::dtype_name(src.dtype) +
                                  "; this format reads f32, f16 or bf16");
    check_range(src, rows, src.rows, "rows");
    check_range(src, cols, src.cols, "cols");
    auto m = std::make_unique<F32Matrix>(rows.size(), cols.size(), *ex);
    for (int64_t r = 0; r < rows.size(); ++r) {
      const void* row = src.row_ptr(rows.begin + r);
      float* out = m->data() + r * cols.size();
      for (int64_t c = 0; c < cols.size(); ++c) {
        int64_t k = cols.begin + c;
        switch (src.dtype) {
          case DType::f32: out[c] = static_cast<const float*>(row)[k]; break;
          case DType::f16: out[c] = f16_to_f32(static_cast<const uint16_t*>(row)[k]); break;
          default: out[c] = bf16_to_f32(static_cast<const uint16_t*>(row)[k]); break;
        }
      }
    }
    return m;
  }
  void set_option(const std::string& key, const std::string&) override {
    throw std::invalid_argument("example_f32: unknown option '" + key + "' (this format has no options)");
  }

 private:
  static void check_range(const hpcinfer::TensorView& src, Range r, int64_t n, const char* what) {
    if (r.begin < 0 || r.end > n || r.begin >= r.end)
      throw std::invalid_argument("example_f32: " + src.name + ": " + what + " [" + std::to_string(r.begin) + ", " +
                                  std::to_string(r.end) + ") outside [0, " + std::to_string(n) + ") or empty");
  }
};

void* create() { return static_cast<hpcinfer::WeightFormat*>(new ExampleF32); }

const hpcinfer::PluginInfo kInfo = {hpcinfer::kPluginAbiVersion, hpcinfer::PluginKind::weights, "example_f32", "1.0.0",
                                    "example out-of-tree plugin: f32 weights, naive matmul", create, nullptr};

}  // namespace

HPCINFER_EXPORT_PLUGIN(kInfo)
