// PluginRegistry against fixture plugins (tests/fixtures, built into build/fixtures) and broken files made here:
// discovery order, the ABI check, loader errors, probe() reasons, typed creation, validate_plugin_names().
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "core/config/load_config.hpp"
#include "core/plugin/plugin_registry.hpp"
#include "support/test_support.hpp"

namespace fs = std::filesystem;
using hpcinfer::PluginEntry;
using hpcinfer::PluginError;
using hpcinfer::PluginKind;
using hpcinfer::PluginRegistry;

namespace {

std::string fixtures() { return std::string(HPCINFER_BUILD_DIR) + "/fixtures"; }
std::string fixture(const std::string& name) { return fixtures() + "/lib" + name + ".so"; }

const PluginEntry& entry_for(const std::vector<PluginEntry>& entries, const std::string& path) {
  for (const auto& e : entries)
    if (e.path == path) return e;
  throw std::runtime_error("no entry for " + path);
}

template <class F>
std::string plugin_error_of(F&& fn) {
  try {
    fn();
  } catch (const PluginError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no PluginError thrown";
  return "";
}

class PluginRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(fixture("fixture_self")))
      GTEST_SKIP() << "fixture plugins not built: " << fixture("fixture_self") << " (build target fixture_self)";
    ::unsetenv("HPCINFER_PLUGIN_PATH");
  }
};

}  // namespace

TEST_F(PluginRegistryTest, ScanReportsEveryFixture) {
  PluginRegistry reg({fixtures()});
  const auto& entries = reg.scan();
  ASSERT_EQ(entries.size(), 4u);

  const PluginEntry& self = entry_for(entries, fixture("fixture_self"));
  EXPECT_TRUE(self.loaded) << self.error;
  EXPECT_EQ(self.kind, "comm");
  EXPECT_EQ(self.name, "fixture_self");
  EXPECT_EQ(self.version, "1.2.3");
  EXPECT_EQ(self.abi, hpcinfer::kPluginAbiVersion);
  EXPECT_TRUE(self.usable);
  EXPECT_EQ(self.description, "test fixture: one-rank communicator");

  const PluginEntry& unusable = entry_for(entries, fixture("fixture_unusable"));
  EXPECT_TRUE(unusable.loaded);
  EXPECT_EQ(unusable.kind, "strategy");
  EXPECT_FALSE(unusable.usable);
  EXPECT_EQ(unusable.why, "fixture_unusable needs a quantum annealer");

  const PluginEntry& abi = entry_for(entries, fixture("fixture_abi99"));
  EXPECT_FALSE(abi.loaded);
  EXPECT_EQ(abi.abi, 99u);
  EXPECT_NE(abi.error.find("plugin " + fixture("fixture_abi99") + " has ABI version 99, this hpcinfer has " + std::to_string(hpcinfer::kPluginAbiVersion)),
            std::string::npos)
      << abi.error;
  EXPECT_TRUE(abi.name.empty());  // nothing past abi_version was read

  const PluginEntry& nosym = entry_for(entries, fixture("fixture_nosym"));
  EXPECT_FALSE(nosym.loaded);
  EXPECT_NE(nosym.error.find(fixture("fixture_nosym") + " is not an hpcinfer plugin: it does not export "
                                                        "'hpcinfer_plugin'"),
            std::string::npos)
      << nosym.error;
}

TEST_F(PluginRegistryTest, TruncatedAndTextFilesReportPathAndLoaderMessage) {
  hpcinfer::test::ScratchDir dir;
  std::string text_body;  // longer than an ELF header, so the loader reads it and finds no ELF magic
  for (int i = 0; i < 20; ++i) text_body += "this is a text file, not a shared object\n";
  dir.write("libtext.so", text_body);
  PluginRegistry reg({dir.path().string()});
  ASSERT_EQ(reg.scan().size(), 1u);
  const PluginEntry& text = reg.scan()[0];
  EXPECT_FALSE(text.loaded);
  EXPECT_NE(text.error.find("cannot load " + (dir / "libtext.so").string()), std::string::npos) << text.error;
  // dlopen's own words, which name the file again.
  EXPECT_NE(text.error.find((dir / "libtext.so").string() + ": invalid ELF header"), std::string::npos) << text.error;

  // Truncated copies of a real plugin (dlopen of these would die of SIGBUS: the loader checks the layout first).
  const auto full = fs::file_size(fixture("fixture_self"));
  for (uintmax_t size : {uintmax_t(40), uintmax_t(600), uintmax_t(4096), full / 2, full - 64}) {
    hpcinfer::test::ScratchDir d;
    fs::copy_file(fixture("fixture_self"), d / "libtruncated.so");
    fs::resize_file(d / "libtruncated.so", size);
    PluginRegistry r({d.path().string()});
    ASSERT_EQ(r.scan().size(), 1u);
    const PluginEntry& e = r.scan()[0];
    EXPECT_FALSE(e.loaded) << size;
    EXPECT_NE(e.error.find("cannot load " + (d / "libtruncated.so").string() + ": truncated ELF file"),
              std::string::npos)
        << size << ": " << e.error;
    EXPECT_NE(e.error.find(std::to_string(size) + " bytes"), std::string::npos) << e.error;
  }
}

TEST_F(PluginRegistryTest, CreatesAWorkingCommunicator) {
  PluginRegistry reg({fixtures()});
  auto comm = reg.create_comm("fixture_self");
  ASSERT_TRUE(comm);
  hpcinfer::CommInit init;
  comm->init(init);
  EXPECT_EQ(comm->size(), 1);
  float out[3] = {1.5f, -2.0f, 3.25f}, in[3] = {};
  comm->send(out, sizeof out, 0, 7);
  comm->recv(in, sizeof in, 0, 7);
  EXPECT_EQ(in[2], 3.25f);
  EXPECT_EQ(comm->stats().bytes_sent, sizeof out);
  EXPECT_EQ(comm->stats().bytes_received, sizeof in);
  // Errors from plugin code cross the boundary as std:: exceptions with their message.
  try {
    comm->recv(in, sizeof in, 0, 8);
    ADD_FAILURE() << "recv without a send must throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("tag 8"), std::string::npos) << e.what();
  }
  hpcinfer::CommInit two;
  two.size = 2;
  EXPECT_THROW(reg.create_comm("fixture_self")->init(two), std::invalid_argument);
}

TEST_F(PluginRegistryTest, UnknownNameListsWhatWasFound) {
  PluginRegistry reg({fixtures()});
  std::string msg = plugin_error_of([&] { reg.create_comm("foo"); });
  EXPECT_NE(msg.find("unknown comm plugin 'foo'; found: fixture_self (" + fixture("fixture_self") + ")"),
            std::string::npos)
      << msg;
  // The right name of the wrong kind is not found either.
  msg = plugin_error_of([&] { reg.create_weights("fixture_self"); });
  EXPECT_NE(msg.find("unknown weights plugin 'fixture_self'; found: none"), std::string::npos) << msg;
}

TEST_F(PluginRegistryTest, AbiMismatchIsNamedWhenItsNameIsAsked) {
  PluginRegistry reg({fixtures()});
  std::string msg = plugin_error_of([&] { reg.create_strategy("abi99"); });
  // The file whose name matches comes first among the files that did not load.
  EXPECT_NE(msg.find("could not load: [plugin " + fixture("fixture_abi99") + " has ABI version 99, this hpcinfer has " + std::to_string(hpcinfer::kPluginAbiVersion)),
            std::string::npos)
      << msg;
}

TEST_F(PluginRegistryTest, UnusablePluginGivesItsReason) {
  PluginRegistry reg({fixtures()});
  std::string msg = plugin_error_of([&] { reg.create_strategy("fixture_unusable"); });
  EXPECT_NE(msg.find("strategy plugin 'fixture_unusable' (" + fixture("fixture_unusable") +
                     ") is not usable here: fixture_unusable needs a quantum annealer"),
            std::string::npos)
      << msg;
}

TEST_F(PluginRegistryTest, EarlierDirectoryWins) {
  hpcinfer::test::ScratchDir a, b;
  fs::copy_file(fixture("fixture_self"), a / "libfixture_self.so");
  fs::copy_file(fixture("fixture_self"), b / "libfixture_self.so");
  PluginRegistry reg({a.path().string(), b.path().string(), "/nonexistent/dir"});
  const auto& entries = reg.scan();
  ASSERT_EQ(entries.size(), 2u);
  const PluginEntry* found = reg.find(PluginKind::comm, "fixture_self");
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->path, (a / "libfixture_self.so").string());
  EXPECT_EQ(entry_for(entries, (b / "libfixture_self.so").string()).shadowed_by, (a / "libfixture_self.so").string());
  // A single .so given as a path entry works as well.
  PluginRegistry single({(b / "libfixture_self.so").string()});
  ASSERT_NE(single.find(PluginKind::comm, "fixture_self"), nullptr);
}

TEST_F(PluginRegistryTest, SearchPathIsConfigThenEnvThenBesideTheBinary) {
  std::string def = PluginRegistry::default_plugin_dir();
  // This test binary lives in build/tests: build/tests/../lib/hpcinfer is the build's plugin directory.
  EXPECT_EQ(fs::path(def), fs::path(HPCINFER_PLUGIN_DIR).lexically_normal());
  ::setenv("HPCINFER_PLUGIN_PATH", "/env/one::/env/two", 1);
  auto path = PluginRegistry::search_path({"/cfg/a", "/env/two"});
  ::unsetenv("HPCINFER_PLUGIN_PATH");
  EXPECT_EQ(path, (std::vector<std::string>{"/cfg/a", "/env/two", "/env/one", def}));
}

TEST_F(PluginRegistryTest, ValidatePluginNamesNamesTheYamlLine) {
  std::string yaml = "model: {path: m}\nplugin_path: [" + fixtures() +
                     "]\nplugins:\n  comm: fixture_self\n  weights: auto\n  strategy: fixture_unusable\n";
  auto cfg = hpcinfer::load_config_text(yaml, "exp.yaml");
  PluginRegistry reg = PluginRegistry::for_config(cfg);
  EXPECT_EQ(reg.dirs().front(), fixtures());
  try {
    hpcinfer::validate_plugin_names(cfg, reg);
    ADD_FAILURE() << "an unusable strategy must be a configuration error";
  } catch (const hpcinfer::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("exp.yaml:6: plugins.strategy: strategy plugin 'fixture_unusable'"),
              std::string::npos)
        << e.what();
  }
  cfg = hpcinfer::load_config_text(yaml, "exp.yaml", {"plugins.comm=glooo"});
  try {
    hpcinfer::validate_plugin_names(cfg);
    ADD_FAILURE() << "an unknown comm plugin must be a configuration error";
  } catch (const hpcinfer::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--set plugins.comm=glooo: unknown comm plugin 'glooo'; found: fixture_self"),
              std::string::npos)
        << e.what();
  }
  cfg = hpcinfer::load_config_text(yaml, "exp.yaml", {"plugins.strategy=fixture_self"});
  try {
    hpcinfer::validate_plugin_names(cfg);
    ADD_FAILURE() << "a comm plugin named as strategy must be a configuration error";
  } catch (const hpcinfer::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--set plugins.strategy=fixture_self: unknown strategy plugin"),
              std::string::npos)
        << e.what();
  }
}
