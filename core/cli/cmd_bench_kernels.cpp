// hpcinfer bench-kernels [--rows 128] [--cols 2048] [--reps 400] [--json]
// The matmul kernels alone, on one thread, with the weights resident in L2 (rows x cols): the compute side of each
// kernel, apart from DRAM bandwidth and from other processes' memory traffic. Each figure is the best of --reps
// calls, which makes it repeatable on a shared machine (a disturbed call only loses). Beside them, the f32 FMA peak
// of one core measured the same way: GFLOP/s / peak is the fraction of the core's FMA rate a kernel reaches.
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "core/cli/cli_util.hpp"
#include "kernels/cpu/convert.hpp"
#include "kernels/cpu/machine_probe.hpp"
#include "kernels/cpu/matmul.hpp"

namespace hpcinfer::cli {
namespace {

template <typename F>
double best_seconds(const F& f, int reps) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int cmd_bench_kernels(const Args& args) {
  CLI::App app{"One-thread, L2-resident matmul kernel rates (best of many calls) next to one core's FMA peak",
               "hpcinfer bench-kernels"};
  int64_t rows = 128, cols = 2048;
  int reps = 400;
  bool json = false;
  app.add_option("--rows", rows, "weight rows (default 128: 512 KiB of bf16 at 2048 columns)")->check(CLI::PositiveNumber);
  app.add_option("--cols", cols, "weight columns = inputs (default 2048)")->check(CLI::PositiveNumber);
  app.add_option("--reps", reps, "calls per figure, the best is kept (default 400)")->check(CLI::PositiveNumber);
  app.add_flag("--json", json, "print one JSON object");
  if (auto rc = parse_args(app, args)) return *rc;

  std::mt19937 g(7);
  std::normal_distribution<float> d(0.0f, 0.05f);
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (float& v : w) v = d(g);
  // bf16 and int8 in the panel layout the plugins pack (kernels/cpu/matmul.hpp).
  std::vector<uint16_t> wb(size_t(kernels::panel_count(rows) * kernels::kPanelRows * cols), 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) wb[kernels::bf16_panel_index(r, c, cols)] = kernels::f32_to_bf16(w[size_t(r * cols + c)]);
  std::vector<uint16_t> wd(size_t(kernels::panel_count(rows) * kernels::kPanelRows * ((cols + 1) / 2 * 2)), 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) wd[kernels::bf16_pair_panel_index(r, c, cols)] = wb[kernels::bf16_panel_index(r, c, cols)];
  const int64_t pb = kernels::int8_panel_bytes(cols, 32);
  std::vector<uint8_t> q(static_cast<size_t>(kernels::panel_count(rows) * pb)), row(size_t(kernels::int8_row_bytes(cols, 32)));
  for (int64_t p = 0; p < kernels::panel_count(rows); ++p) kernels::init_int8_panel(cols, 32, q.data() + p * pb);
  float unused = 0;
  for (int64_t r = 0; r < rows; ++r) {
    kernels::quantize_row_int8(w.data() + r * cols, cols, 32, row.data(), &unused);
    kernels::int8_row_to_panel(row.data(), cols, 32, r % kernels::kPanelRows, q.data() + (r / kernels::kPanelRows) * pb);
  }
  // int4 (GGUF Q4_0's blocks) in its panel layout.
  const int64_t pb4 = kernels::int4_panel_bytes(cols);
  std::vector<uint8_t> q4(size_t(kernels::panel_count(rows) * pb4)), row4(size_t(kernels::int4_row_bytes(cols)));
  for (int64_t p = 0; p < kernels::panel_count(rows); ++p) kernels::init_int4_panel(cols, false, q4.data() + p * pb4);
  for (int64_t r = 0; r < rows; ++r) {
    kernels::quantize_row_int4(w.data() + r * cols, cols, row4.data());
    kernels::int4_row_to_panel(row4.data(), cols, false, r % kernels::kPanelRows, q4.data() + (r / kernels::kPanelRows) * pb4);
  }
  const double peak = kernels::fma_peak_gflops(1, 2000, 100000);  // 0.35 ms each: as short as the kernel calls

  nlohmann::ordered_json out = {{"simd", kernels::simd_level()}, {"rows", rows}, {"cols", cols},
                                {"fma_peak_gflops_1core", peak}, {"kernels", nlohmann::json::array()}};
  if (!json) std::printf("one core, L2-resident [%lld x %lld] weights, %s; f32 FMA peak %.1f GFLOP/s\n",
                         static_cast<long long>(rows), static_cast<long long>(cols), kernels::simd_level(), peak);
  for (int64_t n : {1, 8, 64}) {
    std::vector<float> x(static_cast<size_t>(n * cols)), y(static_cast<size_t>(n * rows));
    for (float& v : x) v = d(g) * 20;
    const int r = std::max<int>(3, int(reps / n));
    struct Case {
      const char* name;
      double bytes;
      std::function<void()> run;
    };
    std::vector<Case> cases = {
        {"f32", double(rows * cols) * 4, [&] { kernels::matmul_f32(x.data(), n, w.data(), cols, y.data(), rows, 0, rows); }},
        {"bf16", double(rows * cols) * 2, [&] { kernels::matmul_bf16(x.data(), n, wb.data(), cols, y.data(), rows, 0, rows); }},
        {"int8", double(q.size()), [&] {
           kernels::matmul_int8(x.data(), n, kernels::Int8Weights{q.data(), nullptr, 32}, cols, y.data(), rows, 0, rows);
         }},
        {"int4", double(q4.size()), [&] { kernels::matmul_int4(x.data(), n, {q4.data(), false}, cols, y.data(), rows, 0, rows); }}};
    if (kernels::bf16dot_supported())  // bf16 activations, AVX512-BF16: its peak is twice the f32 FMA peak
      cases.push_back({"bf16dot", double(wd.size()) * 2, [&] {
                         kernels::matmul_bf16dot(x.data(), n, wd.data(), cols, y.data(), rows, 0, rows);
                       }});
    for (const Case& c : cases) {
      const double s = best_seconds(c.run, r);
      const double gflops = 2.0 * double(rows * cols * n) / s / 1e9, gbs = c.bytes / s / 1e9;
      out["kernels"].push_back({{"weights", c.name}, {"n", n}, {"gflops", gflops}, {"weight_gbs", gbs},
                                {"peak_fraction", gflops / peak}});
      if (!json)
        std::printf("  n=%-3lld %-7s %7.1f GFLOP/s (%3.0f%% of peak)  %6.1f GB/s of weights\n",
                    static_cast<long long>(n), c.name, gflops, 100 * gflops / peak, gbs);
    }
  }
  if (json) std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace hpcinfer::cli
