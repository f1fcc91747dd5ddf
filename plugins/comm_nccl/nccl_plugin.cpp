// Plugin entry: kind comm, name "nccl". probe() needs a CUDA device; loading the .so does not.
#include <cuda_runtime.h>

#include "hpcinfer/plugin.hpp"
#include "nccl_communicator.hpp"

#define HPCINFER_STR2(x) #x
#define HPCINFER_STR(x) HPCINFER_STR2(x)  // the NCCL version built against, in `hpcinfer plugins` and env.json

namespace {

void* create_nccl() { return static_cast<hpcinfer::Communicator*>(new hpcinfer::nccl_comm::NcclCommunicator()); }

hpcinfer::ProbeResult probe_nccl() {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) return {false, std::string("no CUDA device: ") + cudaGetErrorString(err)};
  if (count == 0) return {false, "no CUDA device: cudaGetDeviceCount found 0 devices"};
  return {true, ""};
}

const hpcinfer::PluginInfo kInfo{
    hpcinfer::kPluginAbiVersion,
    hpcinfer::PluginKind::comm,
    "nccl",
    "1.0.0",
    "NCCL " HPCINFER_STR(NCCL_MAJOR) "." HPCINFER_STR(NCCL_MINOR) "." HPCINFER_STR(NCCL_PATCH)
    " transport (CUDA device memory, buffered sends); unique id exchanged through the file or TCP store",
    &create_nccl,
    &probe_nccl,
};

}  // namespace

HPCINFER_EXPORT_PLUGIN(kInfo)
