#include "core/results/host_info.hpp"

#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace hpcinfer {
namespace {

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n\"");
  const size_t b = s.find_last_not_of(" \t\r\n\"");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// The value of the first "key<sep>value" line of a text file, or "".
std::string first_value(const std::string& path, const std::string& key, char sep) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key, 0) == 0) {
      const size_t at = line.find(sep);
      if (at != std::string::npos && trim(line.substr(key.size(), at - key.size())).empty())
        return trim(line.substr(at + 1));
    }
  return "";
}

bool on_path(const std::string& exe) {
  const char* path = std::getenv("PATH");
  if (!path) return false;
  std::stringstream ss(path);
  for (std::string dir; std::getline(ss, dir, ':');)
    if (!dir.empty() && access((std::filesystem::path(dir) / exe).c_str(), X_OK) == 0) return true;
  return false;
}

nlohmann::json gpu_info() {
  nlohmann::json none{{"source", "none"}, {"devices", nlohmann::json::array()}};
  if (!on_path("nvidia-smi")) return none;
  FILE* p = popen("nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader,nounits 2>&1",
                  "r");
  if (!p) return none;
  std::string out;
  std::array<char, 1024> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int rc = pclose(p);
  nlohmann::json g{{"source", "nvidia-smi"}, {"devices", nlohmann::json::array()}};
  if (rc != 0) g["error"] = trim(out);  // e.g. "NVIDIA-SMI has failed because it couldn't communicate ..."
  else g["devices"] = parse_nvidia_smi_csv(out);
  return g;
}

}  // namespace

nlohmann::json parse_nvidia_smi_csv(const std::string& text) {
  nlohmann::json devices = nlohmann::json::array();
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> f;
    std::stringstream ls(line);
    for (std::string field; std::getline(ls, field, ',');) f.push_back(trim(field));
    if (f.size() != 4) continue;
    nlohmann::json d{{"index", f[0]}, {"name", f[1]}, {"driver", f[2]}, {"memory_total_mib", nullptr}};
    char* end = nullptr;
    const double mib = std::strtod(f[3].c_str(), &end);
    if (end && *end == '\0' && !f[3].empty()) d["memory_total_mib"] = mib;
    devices.push_back(d);
  }
  return devices;
}

nlohmann::json host_info_json() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  struct utsname u {};
  uname(&u);
  cpu_set_t set;
  CPU_ZERO(&set);
  const int usable = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : -1;
  const std::string cpu = first_value("/proc/cpuinfo", "model name", ':');
  const std::string mem_kb = first_value("/proc/meminfo", "MemTotal", ':');
  const std::string os = first_value("/etc/os-release", "PRETTY_NAME", '=');
  return {{"hostname", host},
          {"cpu_model", cpu.empty() ? nlohmann::json(nullptr) : nlohmann::json(cpu)},
          {"logical_cores", sysconf(_SC_NPROCESSORS_ONLN)},
          {"usable_cores", usable},  // this process's affinity mask (what Slurm or taskset granted)
          {"memory_total_bytes", mem_kb.empty() ? nlohmann::json(nullptr) : nlohmann::json(std::atoll(mem_kb.c_str()) * 1024)},
          {"kernel", std::string(u.sysname) + " " + u.release},
          {"machine", u.machine},
          {"os", os.empty() ? nlohmann::json(nullptr) : nlohmann::json(os)},
          {"gpu", gpu_info()}};
}

namespace {

// A whole number of bytes in the first line of a file ("max" or unreadable: -1).
double bytes_in_file(const std::string& path) {
  std::ifstream in(path);
  std::string v;
  if (!(in >> v) || v.empty() || v.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::strtod(v.c_str(), nullptr);
}

// Room left under this process's cgroup v2 memory.max (-1 without a limit or cgroup v2).
double cgroup_room_bytes() {
  std::ifstream in("/proc/self/cgroup");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("0::", 0) != 0) continue;  // cgroup v2: "0::/path"
    const std::string dir = "/sys/fs/cgroup" + line.substr(3);
    const double max = bytes_in_file(dir + "/memory.max");
    if (max < 0) return -1;
    const double used = bytes_in_file(dir + "/memory.current");
    return std::max(0.0, max - std::max(0.0, used));
  }
  return -1;
}

}  // namespace

double host_available_bytes() {
  const std::string kb = first_value("/proc/meminfo", "MemAvailable", ':');  // "12345 kB"
  double avail = kb.empty() ? 0.0 : std::strtod(kb.c_str(), nullptr) * 1024.0;
  const double room = cgroup_room_bytes();
  if (room >= 0 && (avail == 0 || room < avail)) avail = room;
  if (const char* cap = std::getenv("HPCINFER_HOST_MEMORY_BYTES"); cap && *cap) {
    const double c = std::strtod(cap, nullptr);
    if (c > 0 && (avail == 0 || c < avail)) avail = c;
  }
  return avail;
}

}  // namespace hpcinfer
