#include "core/results/output_dir.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "core/rendezvous/launch_env.hpp"

namespace fs = std::filesystem;

namespace hpcinfer {

OutputDirLock::OutputDirLock(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error(dir.string() + ": cannot create outputs.dir: " + ec.message());
  const fs::path p = dir / ".hpcinfer.lock";
  fd_ = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::runtime_error(p.string() + ": cannot open the outputs.dir lock: " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char holder[256] = {};
    const ssize_t n = ::pread(fd_, holder, sizeof holder - 1, 0);
    ::close(fd_);
    fd_ = -1;
    std::string who = n > 0 ? std::string(holder, size_t(n)) : std::string("unknown");
    while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
    if (err == EWOULDBLOCK)
      throw std::runtime_error("outputs.dir " + dir.string() + " is in use by another job (" + who + ", lock " +
                               p.string() + "): wait for it to finish, or choose another outputs.dir");
    throw std::runtime_error(p.string() + ": cannot lock: " + std::strerror(err));
  }
  const std::string me = "host " + host_name() + " pid " + std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != ssize_t(me.size())) {
    // the lock itself holds; the holder's name is only for messages
  }
}

OutputDirLock::~OutputDirLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

void write_file_atomic(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << text;
    f.flush();
    if (!f) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw std::runtime_error(path.string() + ": cannot write (" + tmp.string() + ")");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw std::runtime_error(path.string() + ": cannot replace: " + ec.message());
  }
}

FinishedCompletions finished_completions(const fs::path& path) {
  FinishedCompletions out;
  std::ifstream in(path, std::ios::binary);
  if (!in) return out;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t pos = 0, keep = 0;
  int lineno = 0;
  while (pos < text.size()) {
    ++lineno;
    const size_t nl = text.find('\n', pos);
    const bool last = nl == std::string::npos || nl + 1 == text.size();
    const std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    nlohmann::json j;
    bool ok = nl != std::string::npos;
    if (ok) {
      try {
        j = nlohmann::json::parse(line);
        ok = j.is_object() && j.contains("id") && j["id"].is_string();
      } catch (const nlohmann::json::exception&) {
        ok = false;
      }
    }
    if (!ok) {
      if (!last)
        throw std::runtime_error(path.string() + ":" + std::to_string(lineno) +
                                 ": not a completion record (only a torn last line is repaired): move the file away "
                                 "or rerun with --fresh");
      out.dropped_torn_line = true;
      break;
    }
    out.ids.insert(j["id"].get<std::string>());
    ++out.lines;
    pos = nl + 1;
    keep = pos;
  }
  if (out.dropped_torn_line) {
    std::error_code ec;
    fs::resize_file(path, keep, ec);
    if (ec) throw std::runtime_error(path.string() + ": cannot cut its torn last line: " + ec.message());
  }
  return out;
}

std::string config_difference(const std::string& before, const std::string& now) {
  // config.yaml as dump_config_yaml writes it: "section:" lines, then "  key: value" lines; comments ignored.
  auto keyed = [](const std::string& t) {
    std::vector<std::pair<std::string, std::string>> out;  // (dotted key, value text)
    std::istringstream in(t);
    std::string section;
    for (std::string l; std::getline(in, l);) {
      const size_t first = l.find_first_not_of(' ');
      if (first == std::string::npos || l[first] == '#') continue;
      const size_t colon = l.find(':');
      const std::string key = l.substr(first, colon == std::string::npos ? std::string::npos : colon - first);
      const std::string value = colon == std::string::npos ? "" : l.substr(colon + 1);
      if (first == 0) section = key;
      const std::string path = first == 0 ? key : section + "." + key;
      if (path == "outputs.fresh" || path == "threads" || path == "plugins.weights_cache") continue;  // change nothing in the results
      out.emplace_back(path, value);
    }
    return out;
  };
  const auto a = keyed(before), b = keyed(now);
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    if (i < a.size() && i < b.size() && a[i] == b[i]) continue;
    if (i < a.size() && i < b.size() && a[i].first == b[i].first)
      return a[i].first + ":" + a[i].second + " before," + b[i].second + " now";
    return "key " + (i < a.size() ? a[i].first : b[i].first) + " differs";
  }
  return "";
}

}  // namespace hpcinfer
