// backend plugin "cuda": registration and the probe that says whether this host has a usable GPU.
#include <cuda_runtime.h>

#include "hpcinfer/plugin.hpp"
#include "plugins/backend_cuda/cuda_backend.hpp"

namespace {

hpcinfer::ProbeResult probe() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess)
    return {false, std::string("no usable GPU on this host (cudaGetDeviceCount: ") + cudaGetErrorString(e) +
                       "); use device: cpu"};
  if (count < 1) return {false, "no GPU visible on this host (CUDA_VISIBLE_DEVICES empty?); use device: cpu"};
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess && prop.major < 8)
    return {false, std::string("GPU ") + prop.name + " has compute capability " + std::to_string(prop.major) + "." +
                       std::to_string(prop.minor) + "; the cuda backend needs 8.0 or newer"};
  return {true, ""};
}

void* create() { return static_cast<hpcinfer::Backend*>(new hpcinfer::cuda_backend::CudaBackend()); }

const hpcinfer::PluginInfo kInfo{hpcinfer::kPluginAbiVersion, hpcinfer::PluginKind::backend, "cuda", "1.0.0",
                                 "one NVIDIA GPU (sm_80+): CUDA kernels, cuBLASLt prefill GEMMs, weights on the device",
                                 &create, &probe};

}  // namespace

HPCINFER_EXPORT_PLUGIN(kInfo)
