// Backend (device) contract: owns the memory a rank computes in and runs the ops that block kinds are written in.
//
// The core's built-in "cpu" backend runs on host memory with a thread team (core/backend/cpu_backend.*); other
// devices are plugins of kind `backend` (cuda: the CUDA issue). Model code (core/model/blocks) calls only these ops
// and never reads a buffer itself, so the same block runs on every backend. Weight formats pack for a backend and
// their matmul runs on it (weight_format.hpp).
//
// Memory: every pointer passed to an op lives in memory_space() and was allocated by this backend (or lies inside
// such a buffer). Activations are f32, row-major; index arrays (slots, positions, token ids, rows) are int32 in
// backend memory too. copy_to_host() returns when the bytes are on the host (a device backend synchronizes there).
// Threading: one caller thread at a time (the rank's engine thread); ops may use the backend's own threads.
// Errors: std::runtime_error naming the op and the bad value; out of memory names the bytes asked for.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "hpcinfer/model.hpp"
#include "hpcinfer/tensor.hpp"

namespace hpcinfer {

// A layer's KV cache on one rank, for K and for V alike: [slots, kv_heads, max_ctx, head_dim] floats, so one head's
// cached rows of one sequence are contiguous (attention streams them).
struct KvCacheShape {
  int64_t slots = 0;
  int64_t kv_heads = 0;  // this rank's
  int64_t max_ctx = 0;
  int64_t head_dim = 0;
  size_t floats() const { return size_t(slots) * size_t(kv_heads) * size_t(max_ctx) * size_t(head_dim); }
};

// Causal attention of n query tokens over the KV cache. Query head h of this rank is global head q_head_begin + h;
// it reads global kv head (q_head_begin + h) / group, which is cache head that minus kv_head_begin.
struct AttentionParams {
  int64_t n_heads = 0;        // query heads in q and out (this rank's)
  int64_t q_head_begin = 0;   // global index of this rank's first query head
  int64_t kv_head_begin = 0;  // global index of this rank's first cached kv head
  int64_t group = 1;          // query heads per kv head, model-wide (n_heads / n_kv_heads)
  int64_t window = 0;         // > 0: token at position p attends to positions (p - window, p] only
  float scale = 1.0f;         // applied to q.k before the softmax (1/sqrt(head_dim) for plain attention)
  const float* sinks = nullptr;  // [n_heads] or null: one more logit per head in the softmax's denominator only
  KvCacheShape cache;
};

// RoPE tables in backend memory: cos/sin [max_pos, rotary_dim / 2] (already scaled, e.g. YaRN's attention factor).
struct RopeTables {
  const float* cos = nullptr;
  const float* sin = nullptr;
  int64_t rotary_dim = 0;   // the first rotary_dim values of every head rotate; the rest pass through
  int64_t max_pos = 0;
  bool interleaved = false; // false: pairs (i, i + rotary_dim/2); true: pairs (2i, 2i + 1)
};

struct BackendInit {
  int threads = 0;  // host threads for CPU backends; 0 = every core this process may use
  int device = -1;  // device index for device backends (the rank's local rank); -1 = the first
  int rank = 0;     // the rank's global index, for error messages ("rank 3 on host n12: ...")
};

// Device memory of a backend, for every rank's metrics (all zero on the host backend).
struct DeviceMemoryStats {
  size_t allocated = 0;  // bytes in live buffers from alloc()
  size_t peak = 0;       // the most `allocated` has been
  size_t reserved = 0;   // bytes the device reports in use by this process and its libraries (total - free)
  size_t total = 0;      // the device's memory
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Called once, first (a plugin's create() takes no arguments). Throws std::runtime_error when the device is not
  // there ("cuda: no GPU visible (cudaGetDeviceCount: ...)").
  virtual void init(const BackendInit& init) = 0;

  virtual std::string name() const = 0;              // what YAML's `device:` names: "cpu", "cuda"
  virtual MemorySpace memory_space() const = 0;
  virtual std::string description() const = 0;       // one line for logs and env.json (the device, its threads)
  // CPU backends: the thread team their kernels and weight formats run on. Device backends: nullptr.
  virtual Executor* host_threads() { return nullptr; }
  // Device backends: their native context (e.g. a stream and library handles; a struct their own header defines),
  // for weight formats that pack for them. CPU: nullptr.
  virtual void* device_context() { return nullptr; }

  // Device backends: their memory figures; range markers for profilers (NVTX under nsys); a measured
  // device-to-device copy bandwidth in bytes/s over `bytes` (0 where the backend has no device of its own).
  virtual DeviceMemoryStats memory_stats() const { return {}; }
  virtual void range_push(const char* /*name*/) {}
  virtual void range_pop() {}
  virtual double copy_bandwidth(size_t /*bytes*/) { return 0.0; }
  // Device graphs (CUDA graphs): runs `ops`, which issue only this backend's ops (no host reads, no transfers, no
  // communication), as a graph recorded under `key`: recorded once the same key has run eagerly since the last
  // alloc()/free() (so every buffer it touches has its final address), replayed after. Returns false when nothing
  // was run (a backend without graphs, recording refused or failed): the caller then runs `ops` itself.
  virtual bool run_recorded(uint64_t /*key*/, const std::function<void()>& /*ops*/) { return false; }
  // Host buffers for staging device memory through host transports (page-locked on a device backend), and whether
  // a pointer is in the device's memory (false for every pointer on the host backend).
  virtual void* host_alloc(size_t bytes);
  virtual void host_free(void* p) noexcept;
  virtual bool is_device_pointer(const void* /*p*/) const { return false; }

  // ---- memory ----
  // Zero-filled, 64-byte aligned, never nullptr (throws naming the bytes when out of memory). bytes may be 0.
  virtual void* alloc(size_t bytes) = 0;
  virtual void free(void* p) noexcept = 0;
  virtual void copy_to_device(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void copy_to_host(void* host_dst, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;  // both in backend memory; may not overlap
  virtual void synchronize() = 0;  // returns when every op issued so far is done

  // ---- ops (pointers in backend memory; shapes in floats) ----
  // out[rows, dim] = x / sqrt(mean(x^2) + eps) * w[dim], each row on its own (out may alias x).
  virtual void rmsnorm(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* out) = 0;
  // x[count] += y[count]
  virtual void add(float* x, const float* y, int64_t count) = 0;
  // x[rows, cols] += b[cols]
  virtual void add_bias(float* x, const float* b, int64_t rows, int64_t cols) = 0;
  // out[count] = silu(gate) * up   (out may alias gate)
  virtual void swiglu(const float* gate, const float* up, int64_t count, float* out) = 0;
  // In place on x[n, heads, head_dim]: token i's heads rotate by position pos[i] (< t.max_pos).
  virtual void rope(float* x, int64_t n, int64_t heads, int64_t head_dim, const int* pos, const RopeTables& t) = 0;
  // Writes token i's k[i, kv_heads*head_dim] and v[i, ...] into both caches at (slot[i], pos[i]).
  virtual void kv_store(const float* k, const float* v, int64_t n, const int* slot, const int* pos,
                        const KvCacheShape& c, float* k_cache, float* v_cache) = 0;
  // out[n, n_heads*head_dim]: token i (its keys/values already stored) attends to positions [0, pos[i]] of slot[i]
  // (the window's part of them): softmax(scale q.k) v per query head.
  virtual void attention(const float* q, int64_t n, const int* slot, const int* pos, const float* k_cache,
                         const float* v_cache, const AttentionParams& p, float* out) = 0;
  // out[m, cols] = x[rows[j], cols] for j < m.
  virtual void select_rows(const float* x, int64_t cols, const int* rows, int64_t m, float* out) = 0;
  // dst[rows[j], cols] += scale[j] * src[j, cols] for j < m, in order of j (rows may repeat).
  virtual void scatter_add_rows(const float* src, int64_t m, int64_t cols, const int* rows, const float* scale,
                                float* dst) = 0;
  // bytes of zeros at p.
  virtual void zero(void* p, size_t bytes) = 0;
  // dst[r, 0:cols] = src[r, 0:cols] for r < rows, rows src_ld / dst_ld floats apart (a strided block copy).
  virtual void copy_cols(const float* src, int64_t src_ld, float* dst, int64_t dst_ld, int64_t rows, int64_t cols) = 0;
  // y[n, rows] = x[n, cols] w[rows, cols]^T in f32, for small matrices kept as plain f32 (routers).
  virtual void linear_f32(const float* x, const float* w, int64_t n, int64_t rows, int64_t cols, float* y) = 0;
  // Routing of n tokens over r.n_experts experts (RouterSpec in model.hpp): logits[n, n_experts] in,
  // ids[n, top_k] (ascending expert index within a token) and weights[n, top_k] out. correction: [n_experts] or
  // null (sigmoid_group's e_score_correction_bias). Ties go to the lower expert index.
  virtual void moe_route(const float* logits, int64_t n, const RouterSpec& r, const float* correction, int* ids,
                         float* weights) = 0;
  // gpt-oss's clamped SwiGLU: out = (clamp(up, -limit, limit) + 1) * g * sigmoid(alpha * g), g = min(gate, limit).
  virtual void swiglu_oai(const float* gate, const float* up, int64_t count, float alpha, float limit, float* out) = 0;
  // out[r] = index of the largest of x[r, cols] (the first on ties), for r < rows.
  virtual void argmax(const float* x, int64_t rows, int64_t cols, int* out) = 0;
  // Sampling without the whole rows on the host: for each row r of logits[rows, vocab] and its temperature
  // temps[r] > 0 (host array): max[r] = the largest logit, sum[r] = sum over the row, in f64, of
  // weight(l) = exp((l - max[r]) / temps[r]) in f32 (core/runtime/sampler.hpp), and the `count` largest logits of the
  // row with their ids (any order; at a tie on the cut the lower ids), into HOST arrays cand_logits / cand_ids
  // [rows, count]. count <= vocab. Device backends compute it where the logits are.
  virtual void sampling_candidates(const float* logits, int64_t rows, int64_t vocab, const float* temps,
                                   int64_t count, float* max, double* sum, float* cand_logits, int* cand_ids) = 0;
};

inline void* Backend::host_alloc(size_t bytes) { return ::operator new(bytes == 0 ? 1 : bytes); }
inline void Backend::host_free(void* p) noexcept { ::operator delete(p); }

}  // namespace hpcinfer
