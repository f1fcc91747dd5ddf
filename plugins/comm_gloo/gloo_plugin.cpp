// Plugin entry: kind comm, name "gloo".
#include "gloo_communicator.hpp"
#include "hpcinfer/plugin.hpp"

namespace {

void* create_gloo() { return static_cast<hpcinfer::Communicator*>(new hpcinfer::gloo_comm::GlooCommunicator()); }

const hpcinfer::PluginInfo kInfo{
    hpcinfer::kPluginAbiVersion,
    hpcinfer::PluginKind::comm,
    "gloo",
    "1.0.0",
    "Gloo TCP transport (host memory); rendezvous through the file or TCP store",
    &create_gloo,
    nullptr,  // usable wherever TCP works
};

}  // namespace

HPCINFER_EXPORT_PLUGIN(kInfo)
