// The "cuda" backend: device memory on one GPU (the rank's local rank modulo the GPUs visible), one non-blocking
// stream for every op, kernels/cuda for the ops, cuBLASLt for prefill GEMMs, and the device matmul table weight
// formats call (interfaces/hpcinfer/device_matmul.hpp). Nothing in an op waits for the device: only
// copy_to_host() and synchronize() do.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "hpcinfer/backend.hpp"
#include "hpcinfer/device_matmul.hpp"

namespace hpcinfer::cuda_backend {

class CudaBackend final : public Backend {
 public:
  CudaBackend();
  ~CudaBackend() override;
  void init(const BackendInit& init) override;
  std::string name() const override { return "cuda"; }
  MemorySpace memory_space() const override { return MemorySpace::cuda; }
  std::string description() const override { return description_; }
  void* device_context() override { return &ops_; }
  DeviceMemoryStats memory_stats() const override;
  void range_push(const char* name) override;
  void range_pop() override;
  double copy_bandwidth(size_t bytes) override;
  void* host_alloc(size_t bytes) override;
  void host_free(void* p) noexcept override;
  bool is_device_pointer(const void* p) const override;
  bool run_recorded(uint64_t key, const std::function<void()>& ops) override;

  void* alloc(size_t bytes) override;
  void free(void* p) noexcept override;
  void copy_to_device(void* dst, const void* host_src, size_t bytes) override;
  void copy_to_host(void* host_dst, const void* src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void synchronize() override;

  void rmsnorm(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* out) override;
  void add(float* x, const float* y, int64_t count) override;
  void add_bias(float* x, const float* b, int64_t rows, int64_t cols) override;
  void swiglu(const float* gate, const float* up, int64_t count, float* out) override;
  void rope(float* x, int64_t n, int64_t heads, int64_t head_dim, const int* pos, const RopeTables& t) override;
  void kv_store(const float* k, const float* v, int64_t n, const int* slot, const int* pos, const KvCacheShape& c,
                float* k_cache, float* v_cache) override;
  void attention(const float* q, int64_t n, const int* slot, const int* pos, const float* k_cache,
                 const float* v_cache, const AttentionParams& p, float* out) override;
  void select_rows(const float* x, int64_t cols, const int* rows, int64_t m, float* out) override;
  void scatter_add_rows(const float* src, int64_t m, int64_t cols, const int* rows, const float* scale,
                        float* dst) override;
  void zero(void* p, size_t bytes) override;
  void copy_cols(const float* src, int64_t src_ld, float* dst, int64_t dst_ld, int64_t rows, int64_t cols) override;
  void linear_f32(const float* x, const float* w, int64_t n, int64_t rows, int64_t cols, float* y) override;
  void moe_route(const float* logits, int64_t n, const RouterSpec& r, const float* correction, int* ids,
                 float* weights) override;
  void swiglu_oai(const float* gate, const float* up, int64_t count, float alpha, float limit, float* out) override;
  void argmax(const float* x, int64_t rows, int64_t cols, int* out) override;
  void sampling_candidates(const float* logits, int64_t rows, int64_t vocab, const float* temps, int64_t count,
                           float* max, double* sum, float* cand_logits, int* cand_ids) override;

  // The device matmul table's entries (cuda_matmul.cpp).
  void matmul(const DeviceMatrix& w, const float* x, int64_t n, float* y);
  void gather_rows(const DeviceMatrix& w, const int* ids, int64_t n, int64_t row_offset, float* out);

 private:
  void ensure_init() const;
  // A device buffer of at least `bytes` that ops may use between two calls (grown, never shrunk).
  void* scratch(size_t which, size_t bytes);
  // bf16 GEMM through cuBLASLt: y[n, rows] (f32) = xb[n, ld] (bf16) Wb[rows, ld]^T (bf16).
  void gemm_bf16(const uint16_t* w, int64_t rows, int64_t ld, const uint16_t* xb, int64_t n, float* y);
  void* lt_workspace();  // cuBLASLt's workspace, made on first use
  void gemm_f32(const float* w, int64_t rows, int64_t cols, int64_t ld, const float* x, int64_t n, float* y);

  int device_ = -1;
  cudaStream_t stream_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  std::string description_ = "cuda: not initialised";
  DeviceMatmulOps ops_;
  std::map<void*, size_t> live_;  // alloc()'d buffers and their sizes
  size_t allocated_ = 0, peak_ = 0;
  void* scratch_[4] = {nullptr, nullptr, nullptr, nullptr};
  size_t scratch_bytes_[4] = {0, 0, 0, 0};
  void* lt_workspace_ = nullptr;
  size_t lt_workspace_bytes_ = 0;
  // CUDA graphs (run_recorded): every alloc/free/scratch growth starts a new epoch; a graph is replayed only in the
  // epoch it was recorded in, and recorded only for a key that ran eagerly in the current epoch.
  struct Recorded {
    cudaGraphExec_t exec = nullptr;
    uint64_t epoch = 0;
  };
  bool graphs_enabled_ = true;  // HPCINFER_CUDA_GRAPHS=0 turns them off
  uint64_t epoch_ = 1;
  std::map<uint64_t, Recorded> graphs_;
  std::map<uint64_t, uint64_t> eager_epoch_;  // key -> the epoch it last ran eagerly in
  std::map<uint64_t, int> failures_;          // key -> failed recordings (given up after 2)
  bool capturing_ = false, capture_broken_ = false;
  std::vector<void*> deferred_free_;          // freed while recording: released after it
};

}  // namespace hpcinfer::cuda_backend
