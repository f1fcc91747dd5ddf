// The built-in "cpu" backend: host memory, an OpenMP thread team, the kernels of kernels/cpu. Ops run on the
// calling thread when they are small (a parallel region costs microseconds on free cores and a time slice on a
// loaded machine) and on the team otherwise. Registered as the built-in backend plugin "cpu"
// (core/plugin/plugin_registry.cpp), so `hpcinfer plugins` lists it and `device: cpu` picks it.
#pragma once

#include <memory>

#include "core/runtime/thread_pool.hpp"
#include "hpcinfer/backend.hpp"
#include "hpcinfer/plugin.hpp"

namespace hpcinfer {

class CpuBackend : public Backend {
 public:
  CpuBackend() = default;
  explicit CpuBackend(int threads) { init({threads, -1}); }
  void init(const BackendInit& init) override;
  std::string name() const override { return "cpu"; }
  MemorySpace memory_space() const override { return MemorySpace::host; }
  std::string description() const override;
  Executor* host_threads() override { return pool_.get(); }

  void* alloc(size_t bytes) override;
  void free(void* p) noexcept override;
  void copy_to_device(void* dst, const void* src, size_t bytes) override;
  void copy_to_host(void* dst, const void* src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void synchronize() override {}

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
  void argmax(const float* x, int64_t rows, int64_t cols, int* out) override;
  void sampling_candidates(const float* logits, int64_t rows, int64_t vocab, const float* temps, int64_t count,
                           float* max, double* sum, float* cand_logits, int* cand_ids) override;
  void scatter_add_rows(const float* src, int64_t m, int64_t cols, const int* rows, const float* scale,
                        float* dst) override;
  void zero(void* p, size_t bytes) override;
  void copy_cols(const float* src, int64_t src_ld, float* dst, int64_t dst_ld, int64_t rows, int64_t cols) override;
  void linear_f32(const float* x, const float* w, int64_t n, int64_t rows, int64_t cols, float* y) override;
  void moe_route(const float* logits, int64_t n, const RouterSpec& r, const float* correction, int* ids,
                 float* weights) override;
  void swiglu_oai(const float* gate, const float* up, int64_t count, float alpha, float limit, float* out) override;

 private:
  std::unique_ptr<ThreadPool> pool_;
};

// The built-in backend's plugin descriptor (kind backend, name "cpu").
const PluginInfo& cpu_backend_plugin_info();

}  // namespace hpcinfer
