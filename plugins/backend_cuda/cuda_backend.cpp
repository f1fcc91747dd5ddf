#include "plugins/backend_cuda/cuda_backend.hpp"

#include <nvtx3/nvToolsExt.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <vector>

#include "kernels/cuda/ops.hpp"
#include "plugins/backend_cuda/cublaslt_api.hpp"
#include "plugins/backend_cuda/cuda_check.hpp"

namespace hpcinfer::cuda_backend {

namespace {
Where g_where;
}
const Where& where() { return g_where; }
void set_where(int rank) {
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = 0;
  g_where.rank = rank;
  g_where.host = host[0] ? host : "unknown";
}

namespace {
void call_matmul(void* self, const DeviceMatrix& w, const float* x, int64_t n, float* y) {
  static_cast<CudaBackend*>(self)->matmul(w, x, n, y);
}
void call_gather(void* self, const DeviceMatrix& w, const int* ids, int64_t n, int64_t off, float* out) {
  static_cast<CudaBackend*>(self)->gather_rows(w, ids, n, off, out);
}
}  // namespace

CudaBackend::CudaBackend() {
  ops_.self = this;
  ops_.matmul = &call_matmul;
  ops_.gather_rows = &call_gather;
}

CudaBackend::~CudaBackend() {
  if (device_ < 0) return;
  cudaSetDevice(device_);
  if (stream_) cudaStreamSynchronize(stream_);
  for (void*& s : scratch_)
    if (s) cudaFree(s);
  if (lt_workspace_) cudaFree(lt_workspace_);
  for (auto& [p, bytes] : live_) cudaFree(p);  // buffers the owner did not free (an error path)
  for (auto& [k, g] : graphs_) cudaGraphExecDestroy(g.exec);
  if (lt_) lt_api().Destroy(lt_);
  if (stream_) cudaStreamDestroy(stream_);
}

void CudaBackend::init(const BackendInit& init) {
  set_where(init.rank);
  int count = 0;
  HPCINFER_CUDA_CHECK(cudaGetDeviceCount(&count));
  if (count < 1) fail("no GPU visible", __FILE__, __LINE__);
  device_ = (init.device < 0 ? 0 : init.device) % count;
  HPCINFER_CUDA_CHECK(cudaSetDevice(device_));
  cudaDeviceProp prop{};
  HPCINFER_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
  if (prop.major < 8)
    fail(std::string("GPU ") + prop.name + " has compute capability " + std::to_string(prop.major) + "." +
             std::to_string(prop.minor) + "; the cuda backend needs 8.0 or newer (bf16 tensor cores; built for sm_80 and sm_90)",
         __FILE__, __LINE__);
  HPCINFER_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  if (const char* g = std::getenv("HPCINFER_CUDA_GRAPHS"); g && std::string(g) == "0") graphs_enabled_ = false;
  HPCINFER_CUDA_CHECK(lt_api().Create(&lt_));
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  description_ = "cuda: device " + std::to_string(device_) + " " + prop.name + " (sm_" + std::to_string(prop.major) +
                 std::to_string(prop.minor) + ", " + std::to_string(prop.totalGlobalMem >> 20) + " MiB), driver " +
                 std::to_string(driver / 1000) + "." + std::to_string(driver % 1000 / 10) + ", runtime " +
                 std::to_string(runtime / 1000) + "." + std::to_string(runtime % 1000 / 10) + ", cuBLASLt " +
                 std::to_string(lt_api().GetVersion());
}

void CudaBackend::ensure_init() const {
  if (device_ < 0) throw std::runtime_error("cuda backend: used before init()");
}

DeviceMemoryStats CudaBackend::memory_stats() const {
  DeviceMemoryStats s;
  s.allocated = allocated_;
  s.peak = peak_;
  if (device_ >= 0) {
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
      s.total = total_b;
      s.reserved = total_b - free_b;
    }
  }
  return s;
}

void CudaBackend::range_push(const char* name) { nvtxRangePushA(name); }
void CudaBackend::range_pop() { nvtxRangePop(); }

// Device-to-device copy bandwidth, bytes/s (counted once: bytes read + bytes written = 2 x bytes moved, the
// convention of STREAM's copy and of the CPU probes), the best of 5 timed copies after a warm-up.
double CudaBackend::copy_bandwidth(size_t bytes) {
  ensure_init();
  void *a = nullptr, *b = nullptr;
  HPCINFER_CUDA_CHECK(cudaMalloc(&a, bytes));
  HPCINFER_CUDA_CHECK(cudaMalloc(&b, bytes));
  cudaEvent_t e0, e1;
  HPCINFER_CUDA_CHECK(cudaEventCreate(&e0));
  HPCINFER_CUDA_CHECK(cudaEventCreate(&e1));
  HPCINFER_CUDA_CHECK(cudaMemsetAsync(a, 1, bytes, stream_));
  HPCINFER_CUDA_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, stream_));
  float best_ms = 1e30f;
  for (int r = 0; r < 5; ++r) {
    HPCINFER_CUDA_CHECK(cudaEventRecord(e0, stream_));
    HPCINFER_CUDA_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, stream_));
    HPCINFER_CUDA_CHECK(cudaEventRecord(e1, stream_));
    HPCINFER_CUDA_CHECK(cudaEventSynchronize(e1));
    float ms = 0;
    HPCINFER_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
    best_ms = std::min(best_ms, ms);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaFree(a);
  cudaFree(b);
  return 2.0 * double(bytes) / (double(best_ms) * 1e-3);
}

void* CudaBackend::host_alloc(size_t bytes) {
  void* p = nullptr;
  HPCINFER_CUDA_CHECK(cudaMallocHost(&p, std::max<size_t>(bytes, 1)));
  return p;
}
void CudaBackend::host_free(void* p) noexcept {
  if (p) cudaFreeHost(p);
}

bool CudaBackend::is_device_pointer(const void* p) const {
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

void* CudaBackend::alloc(size_t bytes) {
  ensure_init();
  const size_t rounded = std::max<size_t>((bytes + 255) / 256 * 256, 256);
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, rounded);
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free allocation error
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    fail("out of GPU memory allocating " + std::to_string(bytes) + " bytes (" + std::to_string(free_b >> 20) +
             " MiB free of " + std::to_string(total_b >> 20) + " MiB; " + std::to_string(allocated_ >> 20) +
             " MiB held by this rank)",
         __FILE__, __LINE__);
  }
  if (capturing_) {  // a buffer born while recording: the graph would miss it; zero it now, outside the capture
    capture_broken_ = true;
    HPCINFER_CUDA_CHECK(cudaMemset(p, 0, rounded));
  } else {
    HPCINFER_CUDA_CHECK(cudaMemsetAsync(p, 0, rounded, stream_));
  }
  ++epoch_;
  live_[p] = rounded;
  allocated_ += rounded;
  peak_ = std::max(peak_, allocated_);
  return p;
}

void CudaBackend::free(void* p) noexcept {
  if (!p) return;
  auto it = live_.find(p);
  if (it != live_.end()) {
    allocated_ -= it->second;
    live_.erase(it);
  }
  ++epoch_;
  if (capturing_) {
    capture_broken_ = true;
    deferred_free_.push_back(p);
    return;
  }
  cudaFree(p);  // waits for the device: nothing may still use p
}

// Records `ops` on the stream as a graph (relaxed capture: a failed recording is dropped, never half-run) or replays
// the graph recorded for `key` in this epoch. See Backend::run_recorded.
bool CudaBackend::run_recorded(uint64_t key, const std::function<void()>& ops) {
  if (!graphs_enabled_ || device_ < 0) return false;
  if (auto it = graphs_.find(key); it != graphs_.end()) {
    if (it->second.epoch == epoch_) {
      HPCINFER_CUDA_CHECK(cudaGraphLaunch(it->second.exec, stream_));
      return true;
    }
    cudaGraphExecDestroy(it->second.exec);  // buffers moved since: record again
    graphs_.erase(it);
  }
  if (failures_[key] >= 2) return false;
  if (eager_epoch_[key] != epoch_) {  // run it once as it is, so that every buffer it grows is grown
    eager_epoch_[key] = epoch_;
    return false;
  }
  capturing_ = true;
  capture_broken_ = false;
  HPCINFER_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed));
  try {
    ops();
  } catch (const std::exception&) {
    capture_broken_ = true;  // e.g. an op that waits for the device: the caller runs ops eagerly instead
  }
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream_, &graph);
  capturing_ = false;
  for (void* p : deferred_free_) cudaFree(p);
  deferred_free_.clear();
  cudaGraphExec_t exec = nullptr;
  const bool ok = ended == cudaSuccess && graph && !capture_broken_ &&
                  cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess;
  if (graph) cudaGraphDestroy(graph);
  if (!ok) {
    cudaGetLastError();  // the recording's error, not a device fault
    ++failures_[key];
    eager_epoch_[key] = epoch_;
    return false;
  }
  graphs_[key] = Recorded{exec, epoch_};
  HPCINFER_CUDA_CHECK(cudaGraphLaunch(exec, stream_));
  return true;
}

void CudaBackend::copy_to_device(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  // From pageable memory the call returns once the bytes are staged, so the caller may reuse `src` at once.
  HPCINFER_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
}
void CudaBackend::copy_to_host(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  HPCINFER_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
  HPCINFER_CUDA_CHECK(cudaStreamSynchronize(stream_));
}
void CudaBackend::copy(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  HPCINFER_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
}
void CudaBackend::synchronize() {
  if (stream_) HPCINFER_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void* CudaBackend::scratch(size_t which, size_t bytes) {
  if (scratch_bytes_[which] < bytes) {
    ++epoch_;
    if (capturing_) {
      capture_broken_ = true;
      if (scratch_[which]) deferred_free_.push_back(scratch_[which]);
    } else if (scratch_[which]) {
      HPCINFER_CUDA_CHECK(cudaFree(scratch_[which]));  // waits for its last user
    }
    scratch_[which] = nullptr;
    const size_t grown = std::max(bytes, scratch_bytes_[which] * 3 / 2);
    HPCINFER_CUDA_CHECK(cudaMalloc(&scratch_[which], grown));
    scratch_bytes_[which] = grown;
    peak_ = std::max(peak_, allocated_ + scratch_bytes_[0] + scratch_bytes_[1] + scratch_bytes_[2] + scratch_bytes_[3]);
  }
  return scratch_[which];
}

void CudaBackend::rmsnorm(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* out) {
  cuda::rmsnorm(x, w, rows, dim, eps, out, stream_);
  HPCINFER_CUDA_LAUNCHED("rmsnorm");
}
void CudaBackend::add(float* x, const float* y, int64_t count) {
  cuda::add(x, y, count, stream_);
  HPCINFER_CUDA_LAUNCHED("add");
}
void CudaBackend::add_bias(float* x, const float* b, int64_t rows, int64_t cols) {
  cuda::add_bias(x, b, rows, cols, stream_);
  HPCINFER_CUDA_LAUNCHED("add_bias");
}
void CudaBackend::swiglu(const float* gate, const float* up, int64_t count, float* out) {
  cuda::swiglu(gate, up, count, out, stream_);
  HPCINFER_CUDA_LAUNCHED("swiglu");
}
void CudaBackend::swiglu_oai(const float* gate, const float* up, int64_t count, float alpha, float limit, float* out) {
  cuda::swiglu_oai(gate, up, count, alpha, limit, out, stream_);
  HPCINFER_CUDA_LAUNCHED("swiglu_oai");
}
void CudaBackend::rope(float* x, int64_t n, int64_t heads, int64_t head_dim, const int* pos, const RopeTables& t) {
  cuda::rope(x, n, heads, head_dim, pos, t.cos, t.sin, t.rotary_dim, t.max_pos, t.interleaved, stream_);
  HPCINFER_CUDA_LAUNCHED("rope");
}
void CudaBackend::kv_store(const float* k, const float* v, int64_t n, const int* slot, const int* pos,
                           const KvCacheShape& c, float* k_cache, float* v_cache) {
  cuda::kv_store(k, v, n, slot, pos, {c.slots, c.kv_heads, c.max_ctx, c.head_dim}, k_cache, v_cache, stream_);
  HPCINFER_CUDA_LAUNCHED("kv_store");
}

void CudaBackend::attention(const float* q, int64_t n, const int* slot, const int* pos, const float* k_cache,
                            const float* v_cache, const AttentionParams& p, float* out) {
  if (p.cache.head_dim > 256)
    fail("attention: head_dim " + std::to_string(p.cache.head_dim) + " above the kernel's 256", __FILE__, __LINE__);
  const int64_t first_kv = p.q_head_begin / p.group, last_kv = (p.q_head_begin + p.n_heads - 1) / p.group;
  if (first_kv < p.kv_head_begin || last_kv >= p.kv_head_begin + p.cache.kv_heads)
    fail("attention: query heads [" + std::to_string(p.q_head_begin) + ", " +
             std::to_string(p.q_head_begin + p.n_heads) + ") need kv heads outside this cache's [" +
             std::to_string(p.kv_head_begin) + ", " + std::to_string(p.kv_head_begin + p.cache.kv_heads) + ")",
         __FILE__, __LINE__);
  // Split the context when there are too few (token, head) blocks to fill the GPU (decode): chunks of >= 256 keys.
  const int64_t blocks = n * p.n_heads, reach = p.window > 0 ? std::min(p.window, p.cache.max_ctx) : p.cache.max_ctx;
  int splits = 1;
  if (blocks < 512) splits = int(std::clamp<int64_t>(std::min<int64_t>(512 / std::max<int64_t>(blocks, 1), reach / 256), 1, 32));
  float* partials = nullptr;
  if (splits > 1)
    partials = static_cast<float*>(
        scratch(0, size_t(blocks) * size_t(splits) * size_t(p.cache.head_dim + 2) * sizeof(float)));
  cuda::AttentionArgs a{p.n_heads, p.q_head_begin, p.kv_head_begin, p.group, p.window, p.scale, p.sinks,
                        {p.cache.slots, p.cache.kv_heads, p.cache.max_ctx, p.cache.head_dim}};
  cuda::attention(q, n, slot, pos, k_cache, v_cache, a, splits, partials, out, stream_);
  HPCINFER_CUDA_LAUNCHED("attention");
}

void CudaBackend::select_rows(const float* x, int64_t cols, const int* rows, int64_t m, float* out) {
  cuda::select_rows(x, cols, rows, m, out, stream_);
  HPCINFER_CUDA_LAUNCHED("select_rows");
}
void CudaBackend::scatter_add_rows(const float* src, int64_t m, int64_t cols, const int* rows, const float* scale,
                                   float* dst) {
  cuda::scatter_add_rows(src, m, cols, rows, scale, dst, stream_);
  HPCINFER_CUDA_LAUNCHED("scatter_add_rows");
}
void CudaBackend::zero(void* p, size_t bytes) {
  if (bytes) HPCINFER_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream_));
}
void CudaBackend::copy_cols(const float* src, int64_t src_ld, float* dst, int64_t dst_ld, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  HPCINFER_CUDA_CHECK(cudaMemcpy2DAsync(dst, size_t(dst_ld) * sizeof(float), src, size_t(src_ld) * sizeof(float),
                                        size_t(cols) * sizeof(float), size_t(rows), cudaMemcpyDeviceToDevice, stream_));
}
void CudaBackend::linear_f32(const float* x, const float* w, int64_t n, int64_t rows, int64_t cols, float* y) {
  cuda::linear_f32(x, w, n, rows, cols, y, stream_);
  HPCINFER_CUDA_LAUNCHED("linear_f32");
}
void CudaBackend::argmax(const float* x, int64_t rows, int64_t cols, int* out) {
  cuda::argmax(x, rows, cols, out, stream_);
  HPCINFER_CUDA_LAUNCHED("argmax");
}
// One device buffer (scratch 3) for temps, max, sum and the candidates; only those cross to the host.
void CudaBackend::sampling_candidates(const float* logits, int64_t rows, int64_t vocab, const float* temps,
                                      int64_t count, float* max, double* sum, float* cand_logits, int* cand_ids) {
  if (rows <= 0) return;
  const size_t r = size_t(rows), c = size_t(count);
  const size_t sum_at = 0, max_at = sum_at + r * sizeof(double), temps_at = max_at + r * sizeof(float),
               logits_at = (temps_at + r * sizeof(float) + 15) / 16 * 16, ids_at = logits_at + r * c * sizeof(float);
  auto* base = static_cast<uint8_t*>(scratch(3, ids_at + r * c * sizeof(int)));
  HPCINFER_CUDA_CHECK(cudaMemcpyAsync(base + temps_at, temps, r * sizeof(float), cudaMemcpyHostToDevice, stream_));
  cuda::sampling_candidates(logits, rows, vocab, reinterpret_cast<const float*>(base + temps_at), count,
                            reinterpret_cast<float*>(base + max_at), reinterpret_cast<double*>(base + sum_at),
                            reinterpret_cast<float*>(base + logits_at), reinterpret_cast<int*>(base + ids_at), stream_);
  HPCINFER_CUDA_LAUNCHED("sampling_candidates");
  HPCINFER_CUDA_CHECK(cudaMemcpyAsync(sum, base + sum_at, r * sizeof(double), cudaMemcpyDeviceToHost, stream_));
  HPCINFER_CUDA_CHECK(cudaMemcpyAsync(max, base + max_at, r * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  HPCINFER_CUDA_CHECK(cudaMemcpyAsync(cand_logits, base + logits_at, r * c * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  HPCINFER_CUDA_CHECK(cudaMemcpyAsync(cand_ids, base + ids_at, r * c * sizeof(int), cudaMemcpyDeviceToHost, stream_));
  HPCINFER_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::moe_route(const float* logits, int64_t n, const RouterSpec& r, const float* correction, int* ids,
                            float* weights) {
  int kind = -1;
  if (r.kind == "softmax_topk") kind = 0;
  else if (r.kind == "topk_softmax") kind = 1;
  else if (r.kind == "sigmoid_group") kind = 2;
  if (kind < 0) fail("moe_route: unknown router kind '" + r.kind + "'", __FILE__, __LINE__);
  if (r.top_k < 1 || r.top_k > 64 || r.top_k > r.n_experts || r.n_experts > 1024 ||
      (kind == 2 && (r.n_group < 1 || r.n_experts % r.n_group != 0 || r.topk_group < 1 || r.topk_group > r.n_group)))
    fail("moe_route: " + std::to_string(r.top_k) + " of " + std::to_string(r.n_experts) + " experts in " +
             std::to_string(r.n_group) + " groups is outside the kernel's limits (top_k <= 64, experts <= 1024)",
         __FILE__, __LINE__);
  cuda::moe_route(logits, n,
                  {kind, r.n_experts, r.top_k, r.n_group, r.topk_group, r.norm_topk_prob, r.routed_scaling_factor},
                  correction, ids, weights, stream_);
  HPCINFER_CUDA_LAUNCHED("moe_route");
}

}  // namespace hpcinfer::cuda_backend
