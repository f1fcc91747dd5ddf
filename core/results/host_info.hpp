// Facts about the host a rank runs on, for env.json: host name, CPU model, cores, memory, kernel, OS, and GPUs.
// GPUs come from `nvidia-smi` when it is on PATH (name, driver version, memory of each); without it the host is
// recorded as having none ("gpu": {"source": "none", "devices": []}). Collected once per host (local rank 0).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace hpcinfer {

nlohmann::json host_info_json();
// What this process may still allocate on its host, in bytes (0 when unknown): the least of /proc/meminfo's
// MemAvailable (before the host swaps), the room left under this process's cgroup v2 memory.max (Slurm's --mem
// where cgroups are used) and HPCINFER_HOST_MEMORY_BYTES (a cap for nodes shared with other work; also how tests
// make a small host). Ranks on one host share it: see host_share_needed in core/runtime/rank_session.cpp.
double host_available_bytes();

// Parses `nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader,nounits` output.
nlohmann::json parse_nvidia_smi_csv(const std::string& text);

}  // namespace hpcinfer
