// `hpcinfer plugins` through the real binary, with the fixture plugins on HPCINFER_PLUGIN_PATH and via --path.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "hpcinfer/plugin.hpp"
#include "support/test_support.hpp"

namespace fs = std::filesystem;
using hpcinfer::test::bin;
using hpcinfer::test::run_command;
using hpcinfer::test::shell_quote;

namespace {

std::string fixtures() { return std::string(HPCINFER_BUILD_DIR) + "/fixtures"; }

// The table line that mentions `needle`, or "".
std::string line_with(const std::string& text, const std::string& needle) {
  size_t at = text.find(needle);
  if (at == std::string::npos) return "";
  size_t b = text.rfind('\n', at), e = text.find('\n', at);
  return text.substr(b == std::string::npos ? 0 : b + 1, e == std::string::npos ? std::string::npos : e - b - 1);
}

class PluginsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(bin())) GTEST_SKIP() << "hpcinfer not built: " << bin();
    if (!fs::exists(fixtures() + "/libfixture_self.so")) GTEST_SKIP() << "fixture plugins not built in " << fixtures();
  }
};

}  // namespace

TEST_F(PluginsCli, ListsFixturesFromTheEnvironmentPath) {
  auto r = run_command("HPCINFER_PLUGIN_PATH=" + shell_quote(fixtures()) + " " + bin() + " plugins");
  ASSERT_EQ(r.exit_code, 0) << r.output;  // 0 although two fixtures fail to load
  EXPECT_NE(r.output.find("KIND"), std::string::npos) << r.output;
  std::string self = line_with(r.output, "fixture_self");
  EXPECT_NE(self.find("comm"), std::string::npos) << self;
  EXPECT_NE(self.find("1.2.3"), std::string::npos) << self;
  EXPECT_NE(self.find("  yes  "), std::string::npos) << self;
  EXPECT_NE(self.find(fixtures() + "/libfixture_self.so"), std::string::npos) << self;
  std::string unusable = line_with(r.output, "fixture_unusable ");
  EXPECT_NE(unusable.find("no: fixture_unusable needs a quantum annealer"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("failed to load (2):"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("plugin " + fixtures() + "/libfixture_abi99.so has ABI version 99, this hpcinfer has " + std::to_string(hpcinfer::kPluginAbiVersion)),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find(fixtures() + "/libfixture_nosym.so is not an hpcinfer plugin"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("search path (earlier wins):\n  " + fixtures()), std::string::npos) << r.output;
}

TEST_F(PluginsCli, PathOptionComesFirstAndJsonIsParseable) {
  hpcinfer::test::ScratchDir dir;
  fs::copy_file(fixtures() + "/libfixture_self.so", dir / "libfixture_self.so");
  dir.write("libbroken.so", std::string(200, 'x'));
  auto r = run_command("HPCINFER_PLUGIN_PATH=" + shell_quote(fixtures()) + " " + bin() + " plugins --json --path " +
                       shell_quote(dir.path().string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["abi"], hpcinfer::kPluginAbiVersion);
  EXPECT_EQ(j["search_path"][0]["dir"], dir.path().string());
  EXPECT_EQ(j["search_path"][1]["dir"], fixtures());
  bool saw_winner = false, saw_shadowed = false, saw_broken = false;
  for (const auto& p : j["plugins"]) {
    if (p["name"] == "fixture_self" && p["path"] == (dir / "libfixture_self.so").string()) {
      saw_winner = true;
      EXPECT_EQ(p["shadowed_by"], "");
      EXPECT_TRUE(p["usable"].get<bool>());
    }
    if (p["name"] == "fixture_self" && p["path"] == fixtures() + "/libfixture_self.so") {
      saw_shadowed = true;
      EXPECT_EQ(p["shadowed_by"], (dir / "libfixture_self.so").string());
    }
    if (p["path"] == (dir / "libbroken.so").string()) {
      saw_broken = true;
      EXPECT_FALSE(p["loaded"].get<bool>());
      EXPECT_NE(p["error"].get<std::string>().find("invalid ELF header"), std::string::npos) << p["error"];
    }
  }
  EXPECT_TRUE(saw_winner && saw_shadowed && saw_broken) << r.output;
}

TEST_F(PluginsCli, BadOptionIsAUsageError) {
  auto r = run_command(bin() + " plugins --frobnicate");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("frobnicate"), std::string::npos) << r.output;
  r = run_command(bin() + " plugins --help");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("--path"), std::string::npos) << r.output;
}
