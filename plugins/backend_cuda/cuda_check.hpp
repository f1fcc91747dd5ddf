// Error checks of the cuda backend: every CUDA and cuBLAS call's status, turned into std::runtime_error naming the
// call, the host, the rank and the source line ("cuda: rank 1 on host n12: cudaMalloc(2147483648 bytes): out of
// memory (cuda_backend.cpp:41)").
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace hpcinfer::cuda_backend {

// Who we are, for messages: set once by CudaBackend::init.
struct Where {
  int rank = 0;
  std::string host;
  std::string prefix() const { return "cuda: rank " + std::to_string(rank) + " on host " + host + ": "; }
};
const Where& where();
void set_where(int rank);

[[noreturn]] inline void fail(const std::string& what, const char* file, int line) {
  std::string f(file);
  const auto slash = f.find_last_of('/');
  throw std::runtime_error(where().prefix() + what + " (" + (slash == std::string::npos ? f : f.substr(slash + 1)) +
                           ":" + std::to_string(line) + ")");
}
inline void check(cudaError_t e, const std::string& call, const char* file, int line) {
  if (e != cudaSuccess) fail(call + ": " + cudaGetErrorString(e), file, line);
}
inline void check(cublasStatus_t e, const std::string& call, const char* file, int line) {
  if (e != CUBLAS_STATUS_SUCCESS) fail(call + ": cuBLAS status " + std::to_string(int(e)), file, line);
}

}  // namespace hpcinfer::cuda_backend

#define HPCINFER_CUDA_CHECK(call) ::hpcinfer::cuda_backend::check((call), #call, __FILE__, __LINE__)
// After a kernel launch: the launch's own error (bad configuration), not the kernel's outcome.
#define HPCINFER_CUDA_LAUNCHED(name) ::hpcinfer::cuda_backend::check(cudaGetLastError(), name, __FILE__, __LINE__)
