// Facts about the host a rank runs on, for env.json: host name, CPU model, cores, memory, kernel, OS, and GPUs.
// GPUs come from `nvidia-smi` when it is on PATH (name, driver version, memory of each); without it the host is
// recorded as having none ("gpu": {"source": "none", "devices": []}). Collected once per host (local rank 0).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace hpcinfer {

nlohmann::json host_info_json();
// MemAvailable of /proc/meminfo in bytes: what a rank may allocate before the host swaps (0 when unknown).
double host_available_bytes();

// Parses `nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader,nounits` output.
nlohmann::json parse_nvidia_smi_csv(const std::string& text);

}  // namespace hpcinfer
