// cuBLASLt, opened when the backend is initialised (dlopen), not when the plugin is loaded: linking it made every
// hpcinfer process 207 MB larger (its load-time relocations), GPU or not, because the registry loads every plugin to
// list it. Only the types come from cublasLt.h; the calls go through this table.
#pragma once

#include <cublasLt.h>

namespace hpcinfer::cuda_backend {

struct LtApi {
  decltype(&::cublasLtCreate) Create;
  decltype(&::cublasLtDestroy) Destroy;
  decltype(&::cublasLtGetVersion) GetVersion;
  decltype(&::cublasLtMatmul) Matmul;
  decltype(&::cublasLtMatmulAlgoGetHeuristic) MatmulAlgoGetHeuristic;
  decltype(&::cublasLtMatmulDescCreate) MatmulDescCreate;
  decltype(&::cublasLtMatmulDescDestroy) MatmulDescDestroy;
  decltype(&::cublasLtMatmulDescSetAttribute) MatmulDescSetAttribute;
  decltype(&::cublasLtMatmulPreferenceCreate) MatmulPreferenceCreate;
  decltype(&::cublasLtMatmulPreferenceDestroy) MatmulPreferenceDestroy;
  decltype(&::cublasLtMatmulPreferenceSetAttribute) MatmulPreferenceSetAttribute;
  decltype(&::cublasLtMatrixLayoutCreate) MatrixLayoutCreate;
  decltype(&::cublasLtMatrixLayoutDestroy) MatrixLayoutDestroy;
};

// Opens libcublasLt.so.<CUDA major> (then libcublasLt.so) once; throws std::runtime_error naming the library and
// dlerror() when it or a symbol is missing.
const LtApi& lt_api();

}  // namespace hpcinfer::cuda_backend
