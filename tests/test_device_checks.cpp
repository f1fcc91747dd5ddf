// The device / weights / transport combination is checked when the configuration is read, before any weights move:
// each impossible combination is a configuration error (exit 2) naming FILE:LINE of the key at fault and the reason.
// A device backend is stood in for by tests/fixtures/fixture_device.cpp: a plugin named "cuda" that computes in
// cuda memory with no device behind it (every op throws), so these run on a machine without a GPU.
#include <gtest/gtest.h>

#include <filesystem>

#include "support/test_support.hpp"

namespace hpcinfer {
namespace {

using test::run_command;

class DeviceChecks : public ::testing::Test {
 protected:
  // A config for a random tiny model (weights on disk: `run` must fail before reading them).
  void SetUp() override {
    const auto r = run_command(test::bin() + " make-model --preset tiny-gqa --out " + (dir_ / "m").string() + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  std::string config(const std::string& body) {
    dir_.write("exp.yaml", "model:\n  path: " + (dir_ / "m").string() + "\n" + body);
    return (dir_ / "exp.yaml").string();
  }
  std::string fixture_path() const { return std::string(HPCINFER_BUILD_DIR) + "/fixtures_device"; }
  test::ScratchDir dir_;
};

TEST_F(DeviceChecks, WeightsThatDoNotPackForTheDeviceAreRefused) {
  // f32, bf16 and int8 pack for cuda (the device matmul table); bf16dot (AVX512-BF16 panels) does not.
  for (const char* weights : {"f32", "bf16", "int8"}) {
    const std::string cfg = config("plugin_path: [" + fixture_path() + "]\ndevice: cuda\nplugins:\n  weights: " +
                                   weights + "\n");
    const auto r = run_command(test::bin() + " plan --show " + cfg + " 2>&1");
    EXPECT_EQ(r.exit_code, 0) << weights << ": " << r.output;
  }
  const std::string cfg = config("plugin_path: [" + fixture_path() + "]\ndevice: cuda\nplugins:\n  weights: bf16dot\n");
  auto r = run_command(test::bin() + " plan --show " + cfg + " 2>&1");
  if (r.output.find("AVX512-BF16") != std::string::npos) GTEST_SKIP() << "bf16dot is refused earlier here: " << r.output;
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("exp.yaml:6: plugins.weights"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("does not pack for device 'cuda'"), std::string::npos) << r.output;
  // `run` refuses it the same way, before loading weights.
  r = run_command(test::bin() + " run " + cfg + " --set inputs.prompts=/dev/null 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("does not pack for device 'cuda'"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("weights packed"), std::string::npos) << r.output;
}

TEST_F(DeviceChecks, AHostTransportWithADeviceBackendIsStagedAndADeviceTransportWithTheHostIsRefused) {
  // gloo with device: cuda is accepted: the rank stages device buffers through host memory (DeviceCommunicator).
  auto r = run_command(test::bin() + " plan --show " +
                       config("plugin_path: [" + fixture_path() + "]\ndevice: cuda\nplugins:\n  comm: gloo\n"
                              "  strategy: tp_pp\nworld:\n  tp: 2\n") +
                       " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST_F(DeviceChecks, ADeviceWithoutItsBackendOrWithoutAGpuIsRefused) {
  // The real cuda backend plugin (built where CUDA is): on a host without a GPU its probe says so and the device key
  // is at fault; without the plugin (a CPU-only build) the name is unknown and the message lists what there is.
  const bool built = std::filesystem::exists(std::string(HPCINFER_BUILD_DIR) + "/lib/hpcinfer/libhpcinfer_backend_cuda.so");
  auto r = run_command(test::bin() + " plan --show " + config("device: cuda\n") + " 2>&1");
  if (built && r.exit_code == 0) GTEST_SKIP() << "a usable GPU is present: nothing to refuse";
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("exp.yaml:3: device"), std::string::npos) << r.output;
  if (built) {
    EXPECT_NE(r.output.find("is not usable here"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("GPU"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("use device: cpu"), std::string::npos) << r.output;
  } else {
    EXPECT_NE(r.output.find("unknown backend plugin 'cuda'"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("cpu (built in)"), std::string::npos) << r.output;  // what there is
  }
  // nccl moves device memory: with the cpu backend it is refused (here already because no GPU is visible, on a GPU
  // machine because of the memory space).
  r = run_command(test::bin() + " plan --show " + config("plugins:\n  comm: nccl\n  strategy: tp_pp\nworld:\n  tp: 2\n") +
                  " 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("plugins.comm"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("nccl"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace hpcinfer
