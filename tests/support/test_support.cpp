#include "support/test_support.hpp"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <sys/wait.h>

namespace hpcinfer::test {

std::filesystem::path shared_data() {
  if (const char* env = std::getenv("HPCINFER_SHARED_DATA")) return env;
  return HPCINFER_SHARED_DATA;
}
// Overridable for a build carried to another machine (bench/gpu/run.sh): HPCINFER_TEST_BIN, HPCINFER_TEST_PLUGIN_DIR.
std::string bin() {
  const char* e = std::getenv("HPCINFER_TEST_BIN");
  return e && *e ? e : HPCINFER_BIN;
}
std::string plugin_dir() {
  const char* e = std::getenv("HPCINFER_TEST_PLUGIN_DIR");
  return e && *e ? e : HPCINFER_PLUGIN_DIR;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

CommandResult run_command(const std::string& cmdline) {
  CommandResult r;
  std::string full = cmdline + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

ScratchDir::ScratchDir() {
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() / ("hpcinfer_test_" + std::to_string(rd()) + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}
ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}
void ScratchDir::write(const std::string& rel, const std::string& text) const {
  std::filesystem::create_directories((path_ / rel).parent_path());
  std::ofstream(path_ / rel, std::ios::binary) << text;
}

std::vector<float> randn(size_t n, uint32_t seed, float scale) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace hpcinfer::test
