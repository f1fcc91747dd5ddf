// Install + out-of-tree plugin: `cmake --install` this build into a temporary prefix, build examples/hello_weights
// against that prefix with find_package(hpcinfer), and check that both the build tree's hpcinfer (through
// HPCINFER_PLUGIN_PATH) and the installed hpcinfer (through <prefix>/lib/hpcinfer) list it as usable; then load it
// in-process and check its matmul against a plain reference. One test: the cmake steps take ~10 s together.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/backend/cpu_backend.hpp"
#include "core/plugin/plugin_registry.hpp"
#include "support/test_support.hpp"

namespace fs = std::filesystem;
using hpcinfer::test::run_command;
using hpcinfer::test::shell_quote;

namespace {

std::string line_with(const std::string& text, const std::string& needle) {
  size_t at = text.find(needle);
  if (at == std::string::npos) return "";
  size_t b = text.rfind('\n', at), e = text.find('\n', at);
  return text.substr(b == std::string::npos ? 0 : b + 1, e == std::string::npos ? std::string::npos : e - b - 1);
}

// One thread, one chunk: enough to drive a plugin's kernels.
class SerialExecutor final : public hpcinfer::Executor {
 public:
  int threads() const override { return 1; }
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) override {
    for (int64_t b = 0; b < n; b += 3) fn(b, std::min(n, b + 3));  // uneven chunks on purpose
  }
};

// The cpu backend with that executor.
class SerialCpu final : public hpcinfer::CpuBackend {
 public:
  SerialCpu() : CpuBackend(1) {}
  hpcinfer::Executor* host_threads() override { return &ex_; }

 private:
  SerialExecutor ex_;
};

// The example format against y = x W^T computed here, for an f32 shard and a bf16 source.
void check_example_format(const std::string& plugin_dir) {
  hpcinfer::PluginRegistry reg({plugin_dir});
  auto fmt = reg.create_weights("example_f32");
  ASSERT_TRUE(fmt);
  EXPECT_EQ(fmt->name(), "example_f32");
  EXPECT_TRUE(fmt->accepts(hpcinfer::DType::bf16));
  EXPECT_FALSE(fmt->accepts(hpcinfer::DType::q8_0));

  const int64_t R = 7, C = 5, n = 2;  // full W [R, C]
  std::vector<float> w(R * C), x(n * 3);
  for (int64_t i = 0; i < R * C; ++i) w[i] = float(i % 11) * 0.25f - 1.0f;
  for (int64_t i = 0; i < n * 3; ++i) x[i] = float(i) - 2.5f;
  hpcinfer::TensorView view{"layers.0.wq", hpcinfer::DType::f32, w.data(), R, C};
  hpcinfer::Range rows{2, 6}, cols{1, 4};  // shard [4, 3]
  SerialCpu cpu;
  EXPECT_TRUE(fmt->supports_backend("cpu"));
  EXPECT_FALSE(fmt->supports_backend("cuda"));
  EXPECT_EQ(fmt->bytes(4, 3), 4u * 3u * sizeof(float));
  auto m = fmt->pack(view, rows, cols, cpu);
  ASSERT_EQ(m->rows(), 4);
  ASSERT_EQ(m->cols(), 3);
  EXPECT_EQ(m->bytes(), 4u * 3u * sizeof(float));
  std::vector<float> y(n * 4);
  m->matmul(x.data(), n, y.data());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t r = 0; r < 4; ++r) {
      float ref = 0;
      for (int64_t c = 0; c < 3; ++c) ref += x[i * 3 + c] * w[(rows.begin + r) * C + cols.begin + c];
      EXPECT_FLOAT_EQ(y[i * 4 + r], ref) << "token " << i << " row " << r;
    }
  float row[3];
  m->dequantize_row(1, row);
  EXPECT_EQ(row[0], w[3 * C + 1]);

  // bf16 source: the upper halves of f32 values that bf16 holds exactly.
  std::vector<uint16_t> b(R * C);
  for (int64_t i = 0; i < R * C; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &w[i], 4);
    b[i] = uint16_t(bits >> 16);
  }
  auto mb = fmt->pack({"layers.0.wk", hpcinfer::DType::bf16, b.data(), R, C}, {0, R}, {0, C}, cpu);
  std::vector<float> full(C);
  mb->dequantize_row(6, full.data());
  for (int64_t c = 0; c < C; ++c) EXPECT_EQ(full[c], w[6 * C + c]);
  // f16 source: 1.0, -2.0, the smallest subnormal 2^-24.
  uint16_t h[3] = {0x3C00, 0xC000, 0x0001};
  float hf[3];
  fmt->pack({"norm", hpcinfer::DType::f16, h, 1, 3}, {0, 1}, {0, 3}, cpu)->dequantize_row(0, hf);
  EXPECT_EQ(hf[0], 1.0f);
  EXPECT_EQ(hf[1], -2.0f);
  EXPECT_EQ(hf[2], std::ldexp(1.0f, -24));

  // Errors name the tensor and the bad range / option.
  try {
    fmt->pack(view, {5, 9}, {0, C}, cpu);
    ADD_FAILURE() << "rows outside the tensor must throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("layers.0.wq: rows [5, 9) outside [0, 7)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(fmt->set_option("group_size", "32"), std::invalid_argument);
}

}  // namespace

TEST(Install, OutOfTreePluginBuildsAgainstTheInstalledPackage) {
  const std::string build = HPCINFER_BUILD_DIR, source = HPCINFER_SOURCE_DIR;
  if (!fs::exists(hpcinfer::test::bin())) GTEST_SKIP() << "hpcinfer not built: " << hpcinfer::test::bin();
  if (run_command("cmake --version").exit_code != 0) GTEST_SKIP() << "cmake not on PATH";
  hpcinfer::test::ScratchDir tmp;
  const std::string prefix = (tmp / "prefix").string(), ex_build = (tmp / "example").string();

  // 1. Install the main build.
  auto r = run_command("cmake --install " + shell_quote(build) + " --prefix " + shell_quote(prefix));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* rel : {"bin/hpcinfer", "include/hpcinfer/plugin.hpp", "include/hpcinfer/weight_format.hpp",
                          "lib/cmake/hpcinfer/hpcinferConfig.cmake", "lib/cmake/hpcinfer/hpcinferConfigVersion.cmake",
                          "lib/cmake/hpcinfer/hpcinferTargets.cmake", "lib/cmake/hpcinfer/HpcinferPlugin.cmake"})
    EXPECT_TRUE(fs::exists(fs::path(prefix) / rel)) << "not installed: " << rel << "\n" << r.output;
  EXPECT_FALSE(fs::exists(fs::path(prefix) / "lib/hpcinfer/libfixture_self.so")) << "test fixtures were installed";

  // 2. Configure and build the example against the prefix only (it must not see the source tree).
  r = run_command("cmake -S " + shell_quote(source + "/examples/hello_weights") + " -B " + shell_quote(ex_build) +
                  " -DCMAKE_PREFIX_PATH=" + shell_quote(prefix) + " -DCMAKE_INSTALL_PREFIX=" + shell_quote(prefix));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_command("cmake --build " + shell_quote(ex_build));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(fs::exists(ex_build + "/libhpcinfer_example_f32.so")) << r.output;

  // 3. The build tree's binary finds it through HPCINFER_PLUGIN_PATH.
  r = run_command("HPCINFER_PLUGIN_PATH=" + shell_quote(ex_build) + " " + hpcinfer::test::bin() + " plugins");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string line = line_with(r.output, "example_f32");
  EXPECT_NE(line.find("weights"), std::string::npos) << r.output;
  EXPECT_NE(line.find("  yes  "), std::string::npos) << r.output;
  EXPECT_NE(line.find(ex_build + "/libhpcinfer_example_f32.so"), std::string::npos) << r.output;

  // 4. Installed into the same prefix, the installed binary finds it beside itself (<prefix>/lib/hpcinfer).
  r = run_command("cmake --install " + shell_quote(ex_build));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_command("env -u HPCINFER_PLUGIN_PATH " + shell_quote(prefix + "/bin/hpcinfer") + " plugins");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  line = line_with(r.output, "example_f32");
  EXPECT_NE(line.find("  yes  "), std::string::npos) << r.output;
  EXPECT_NE(line.find(prefix + "/lib/hpcinfer/libhpcinfer_example_f32.so"), std::string::npos) << r.output;

  // 5. It really works: loaded in this process, its matmul matches a reference.
  check_example_format(ex_build);
}
