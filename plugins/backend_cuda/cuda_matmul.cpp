// The device matmul table of the cuda backend (interfaces/hpcinfer/device_matmul.hpp):
//   n <= kGemvMaxTokens (decode): the GEMV kernels stream W once, dequantizing in registers (f32 activations);
//   larger n (prefill): cuBLASLt. bf16 weights: activations rounded to bf16, bf16 x bf16 -> f32 on tensor cores.
//   int8: row chunks of W dequantized to bf16 in a scratch buffer, then the same GEMM per chunk. f32: an f32 GEMM
//   with f32 compute (CUBLAS_COMPUTE_32F, no TF32), so the f32 format stays the exact reference.
#include <algorithm>

#include "kernels/cuda/ops.hpp"
#include "plugins/backend_cuda/cuda_backend.hpp"
#include "plugins/backend_cuda/cublaslt_api.hpp"
#include "plugins/backend_cuda/cuda_check.hpp"

namespace hpcinfer::cuda_backend {
namespace {

// Column-major GEMM D[m, n] = op(A)[m, k] B[k, n] with A stored [k, m] (transposed, lda) and B [k, n] (ldb).
struct LtGemm {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~LtGemm() {
    if (pref) lt_api().MatmulPreferenceDestroy(pref);
    if (c) lt_api().MatrixLayoutDestroy(c);
    if (b) lt_api().MatrixLayoutDestroy(b);
    if (a) lt_api().MatrixLayoutDestroy(a);
    if (op) lt_api().MatmulDescDestroy(op);
  }
};

void lt_gemm(cublasLtHandle_t lt, cudaStream_t stream, cudaDataType_t in_type, const void* w, int64_t m, int64_t k,
             int64_t lda, const void* x, int64_t n, int64_t ldb, float* y, int64_t ldc, void* workspace,
             size_t workspace_bytes) {
  LtGemm g;
  HPCINFER_CUDA_CHECK(lt_api().MatmulDescCreate(&g.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  HPCINFER_CUDA_CHECK(lt_api().MatmulDescSetAttribute(g.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  HPCINFER_CUDA_CHECK(lt_api().MatmulDescSetAttribute(g.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  HPCINFER_CUDA_CHECK(lt_api().MatrixLayoutCreate(&g.a, in_type, uint64_t(k), uint64_t(m), lda));
  HPCINFER_CUDA_CHECK(lt_api().MatrixLayoutCreate(&g.b, in_type, uint64_t(k), uint64_t(n), ldb));
  HPCINFER_CUDA_CHECK(lt_api().MatrixLayoutCreate(&g.c, CUDA_R_32F, uint64_t(m), uint64_t(n), ldc));
  HPCINFER_CUDA_CHECK(lt_api().MatmulPreferenceCreate(&g.pref));
  HPCINFER_CUDA_CHECK(lt_api().MatmulPreferenceSetAttribute(g.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                          &workspace_bytes, sizeof workspace_bytes));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  HPCINFER_CUDA_CHECK(lt_api().MatmulAlgoGetHeuristic(lt, g.op, g.a, g.b, g.c, g.c, g.pref, 1, &result, &found));
  if (found < 1)
    fail("cuBLASLt has no algorithm for a " + std::to_string(m) + " x " + std::to_string(n) + " x " +
             std::to_string(k) + " GEMM",
         __FILE__, __LINE__);
  const float alpha = 1.0f, beta = 0.0f;
  HPCINFER_CUDA_CHECK(lt_api().Matmul(lt, g.op, &alpha, w, g.a, x, g.b, &beta, y, g.c, y, g.c, &result.algo, workspace,
                                     workspace_bytes, stream));
}

constexpr size_t kLtWorkspaceBytes = size_t(32) << 20;
constexpr size_t kDequantChunkBytes = size_t(256) << 20;  // int8 prefill: bf16 rows of W dequantized at a time

}  // namespace

void* CudaBackend::lt_workspace() {
  if (!lt_workspace_) {
    if (capturing_) capture_broken_ = true;  // born while recording: record again next time
    ++epoch_;
    HPCINFER_CUDA_CHECK(cudaMalloc(&lt_workspace_, kLtWorkspaceBytes));
    lt_workspace_bytes_ = kLtWorkspaceBytes;
  }
  return lt_workspace_;
}

void CudaBackend::gemm_bf16(const uint16_t* w, int64_t rows, int64_t ld, const uint16_t* xb, int64_t n, float* y) {
  lt_workspace();
  // K = ld: both operands are zero past cols, so the padded columns add nothing.
  lt_gemm(lt_, stream_, CUDA_R_16BF, w, rows, ld, ld, xb, n, ld, y, rows, lt_workspace_, lt_workspace_bytes_);
}

void CudaBackend::gemm_f32(const float* w, int64_t rows, int64_t cols, int64_t ld, const float* x, int64_t n,
                           float* y) {
  lt_workspace();
  lt_gemm(lt_, stream_, CUDA_R_32F, w, rows, cols, ld, x, n, cols, y, rows, lt_workspace_, lt_workspace_bytes_);
}

void CudaBackend::matmul(const DeviceMatrix& w, const float* x, int64_t n, float* y) {
  ensure_init();
  if (n <= 0) return;
  if (n <= cuda::kGemvMaxTokens) {
    switch (w.type) {
      case DeviceWeights::f32:
        cuda::gemv_f32(static_cast<const float*>(w.data), w.rows, w.cols, w.ld, x, n, y, stream_);
        break;
      case DeviceWeights::bf16:
        cuda::gemv_bf16(static_cast<const uint16_t*>(w.data), w.rows, w.cols, w.ld, x, n, y, stream_);
        break;
      case DeviceWeights::int8:
        cuda::gemv_int8(static_cast<const int8_t*>(w.data), w.scales, w.rows, w.cols, w.ld, w.group, x, n, y,
                        stream_);
        break;
    }
    HPCINFER_CUDA_LAUNCHED("matmul (gemv)");
    return;
  }
  if (w.type == DeviceWeights::f32) {
    gemm_f32(static_cast<const float*>(w.data), w.rows, w.cols, w.ld, x, n, y);
    return;
  }
  auto* xb = static_cast<uint16_t*>(scratch(1, size_t(n) * size_t(w.ld) * 2));
  cuda::f32_to_bf16(x, n, w.cols, w.ld, xb, stream_);
  HPCINFER_CUDA_LAUNCHED("matmul (activations to bf16)");
  if (w.type == DeviceWeights::bf16) {
    gemm_bf16(static_cast<const uint16_t*>(w.data), w.rows, w.ld, xb, n, y);
    return;
  }
  // int8: chunks of rows (a multiple of 8, so every chunk's output column block stays 32-byte aligned).
  const int64_t chunk = std::max<int64_t>(8, int64_t(kDequantChunkBytes / size_t(w.ld * 2)) / 8 * 8);
  auto* wb = static_cast<uint16_t*>(scratch(2, size_t(std::min(chunk, w.rows)) * size_t(w.ld) * 2));
  const auto* q = static_cast<const int8_t*>(w.data);
  const int64_t groups = w.ld / w.group;
  for (int64_t r0 = 0; r0 < w.rows; r0 += chunk) {
    const int64_t m = std::min(chunk, w.rows - r0);
    cuda::int8_to_bf16(q + r0 * w.ld, w.scales + r0 * groups, m, w.ld, w.group, wb, stream_);
    HPCINFER_CUDA_LAUNCHED("matmul (int8 weights to bf16)");
    // y[:, r0 : r0 + m]: column-major [rows, n] with ldc = rows, starting at row r0.
    lt_workspace();
    lt_gemm(lt_, stream_, CUDA_R_16BF, wb, m, w.ld, w.ld, xb, n, w.ld, y + r0, w.rows, lt_workspace_,
            lt_workspace_bytes_);
  }
}

void CudaBackend::gather_rows(const DeviceMatrix& w, const int* ids, int64_t n, int64_t row_offset, float* out) {
  ensure_init();
  cuda::gather_rows(int(w.type), w.data, w.scales, w.rows, w.cols, w.ld, w.group, ids, n, row_offset, out, stream_);
  HPCINFER_CUDA_LAUNCHED("gather_rows");
}

}  // namespace hpcinfer::cuda_backend
