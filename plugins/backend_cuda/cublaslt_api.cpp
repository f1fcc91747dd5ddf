#include "plugins/backend_cuda/cublaslt_api.hpp"

#include <dlfcn.h>

#include <mutex>
#include <stdexcept>
#include <string>

namespace hpcinfer::cuda_backend {
namespace {

LtApi load() {
  const std::string versioned = "libcublasLt.so." + std::to_string(CUBLAS_VER_MAJOR);
  void* h = dlopen(versioned.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) h = dlopen("libcublasLt.so", RTLD_NOW | RTLD_LOCAL);
  if (!h)
    throw std::runtime_error("cuda: cannot open " + versioned + " (cuBLASLt, for prefill GEMMs): " + dlerror() +
                             "; put the CUDA libraries on LD_LIBRARY_PATH");
  auto sym = [&](const char* name) {
    void* p = dlsym(h, name);
    if (!p) throw std::runtime_error(std::string("cuda: ") + versioned + " has no " + name);
    return p;
  };
  LtApi a{};
#define HPCINFER_LT(field) a.field = reinterpret_cast<decltype(a.field)>(sym("cublasLt" #field))
  HPCINFER_LT(Create);
  HPCINFER_LT(Destroy);
  HPCINFER_LT(GetVersion);
  HPCINFER_LT(Matmul);
  HPCINFER_LT(MatmulAlgoGetHeuristic);
  HPCINFER_LT(MatmulDescCreate);
  HPCINFER_LT(MatmulDescDestroy);
  HPCINFER_LT(MatmulDescSetAttribute);
  HPCINFER_LT(MatmulPreferenceCreate);
  HPCINFER_LT(MatmulPreferenceDestroy);
  HPCINFER_LT(MatmulPreferenceSetAttribute);
  HPCINFER_LT(MatrixLayoutCreate);
  HPCINFER_LT(MatrixLayoutDestroy);
#undef HPCINFER_LT
  return a;  // the library stays open for the process's life
}

}  // namespace

const LtApi& lt_api() {
  static LtApi api;
  static std::once_flag once;
  std::call_once(once, [] { api = load(); });
  return api;
}

}  // namespace hpcinfer::cuda_backend
