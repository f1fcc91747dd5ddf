// Plugin entry: kind comm, name "mpi".
#include "hpcinfer/plugin.hpp"
#include "mpi_communicator.hpp"

namespace {

void* create_mpi() { return static_cast<hpcinfer::Communicator*>(new hpcinfer::mpi_comm::MpiCommunicator()); }

const hpcinfer::PluginInfo kInfo{
    hpcinfer::kPluginAbiVersion,
    hpcinfer::PluginKind::comm,
    "mpi",
    "1.0.0",
    "MPI transport (host memory); run under mpirun or srun --mpi=pmix",
    &create_mpi,
    nullptr,
};

}  // namespace

HPCINFER_EXPORT_PLUGIN(kInfo)
