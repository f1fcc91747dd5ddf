// Helpers shared by the test suites: where the outside references are, running the CLI, scratch directories.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace hpcinfer::test {

// ../shared/data (read there, never copied). Empty path when absent.
std::filesystem::path shared_data();
// Skips the current test with a message naming the missing file, unless it exists.
// A sanitizer build (ASan adds shadow memory and a quarantine to every RSS, and instruments loops unevenly): tests of
// speed or memory figures skip there, saying so.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HPCINFER_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define HPCINFER_TEST_SANITIZED 1
#endif
#endif
#ifdef HPCINFER_TEST_SANITIZED
#define HPCINFER_SKIP_MEASUREMENT_WHEN_SANITIZED(what) \
  GTEST_SKIP() << "sanitizer build: " << (what) << " measured here say nothing of the product's"
#else
#define HPCINFER_SKIP_MEASUREMENT_WHEN_SANITIZED(what) \
  do {                                                 \
  } while (0)
#endif

#define HPCINFER_REQUIRE_DATA(rel)                                                                  \
  do {                                                                                              \
    if (!std::filesystem::exists(::hpcinfer::test::shared_data() / (rel)))                          \
      GTEST_SKIP() << "reference data absent: " << (::hpcinfer::test::shared_data() / (rel)).string() \
                   << " (../shared/data is read, not shipped)";                                    \
  } while (0)

std::string bin();         // build/bin/hpcinfer
std::string plugin_dir();  // build/lib/hpcinfer

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};
// Runs a shell command line, capturing stdout+stderr.
CommandResult run_command(const std::string& cmdline);
std::string shell_quote(const std::string& s);

// A fresh directory removed at destruction.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& rel) const { return path_ / rel; }
  void write(const std::string& rel, const std::string& text) const;

 private:
  std::filesystem::path path_;
};

std::string read_file(const std::filesystem::path& p);
// n samples of N(0, scale^2) from a seeded mt19937 (kernel tests' random inputs).
std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f);

}  // namespace hpcinfer::test
