// hpcinfer bench-stream [--threads 2] [--rounds 7] [--layers 22] [--json]
// The matmul kernels streaming one decode step's weights from memory, beside the machine's read and copy bandwidth
// measured in the same rounds: how close the bf16 and int8 GEMV come to the memory limit, apart from everything
// else a model does per token (attention, norms, synchronisation; `hpcinfer bench` measures the whole model).
// The weights: tinyllama-1.1b's 22 layers (q, k, v, o, gate, up, down: 968M weights) packed as the plugins pack
// them (16-row panels), one parallel matmul per matrix on the thread pool, batch 1, as in a decode step.
// Each round runs the read probe, the copy probe, the bf16 pass and the int8 pass back to back; this shared
// machine's bandwidth moves between rounds, so each pass is compared with the read probe of its own round.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/cli/cli_util.hpp"
#include "core/eval/sample_stats.hpp"
#include "core/runtime/thread_pool.hpp"
#include "kernels/cpu/machine_probe.hpp"
#include "kernels/cpu/matmul.hpp"
#include "plugins/common/shard_storage.hpp"

namespace hpcinfer::cli {
namespace {

struct Shape {
  int64_t rows, cols;
};

double median(const std::vector<double>& v) { return eval::percentile(v, 0.5); }

}  // namespace

int cmd_bench_stream(const Args& args) {
  CLI::App app{"bf16 and int8 GEMV streaming a decode step's weights from memory, beside the read/copy bandwidth",
               "hpcinfer bench-stream"};
  int threads = 2, rounds = 7, layers = 22;
  bool json = false;
  app.add_option("--threads", threads, "threads (default 2)")->check(CLI::PositiveNumber);
  app.add_option("--rounds", rounds, "rounds of probe + bf16 pass + int8 pass (default 7)")->check(CLI::PositiveNumber);
  app.add_option("--layers", layers, "layers of tinyllama-1.1b shapes to stream (default 22, all)")
      ->check(CLI::Range(1, 22));
  app.add_flag("--json", json, "print one JSON object");
  if (auto rc = parse_args(app, args)) return *rc;

  std::vector<Shape> mats;
  for (int l = 0; l < layers; ++l)
    for (Shape s : {Shape{2048, 2048}, Shape{256, 2048}, Shape{256, 2048}, Shape{2048, 2048}, Shape{5632, 2048},
                    Shape{5632, 2048}, Shape{2048, 5632}})
      mats.push_back(s);
  size_t bf16_bytes = 0, int8_bytes = 0;
  for (const Shape& m : mats) {
    bf16_bytes += size_t(m.rows * m.cols) * 2;
    int8_bytes += size_t(kernels::panel_count(m.rows) * kernels::int8_panel_bytes(m.cols, 32));
  }
  // The values do not change the speed: bf16 ones, int8 panels as init_int8_panel leaves them (q = 0, scale 0).
  plugins::HugeBuffer<uint16_t> wb(bf16_bytes / 2);
  plugins::HugeBuffer<uint8_t> wq(int8_bytes);
  std::fill(wb.ptr, wb.ptr + wb.count, uint16_t(0x3f80));
  for (size_t off = 0; const Shape& m : mats) {
    const int64_t pb = kernels::int8_panel_bytes(m.cols, 32);
    for (int64_t p = 0; p < kernels::panel_count(m.rows); ++p) kernels::init_int8_panel(m.cols, 32, wq.ptr + off + size_t(p * pb));
    off += size_t(kernels::panel_count(m.rows) * pb);
  }
  ThreadPool pool(threads);
  std::vector<float> x(5632, 0.01f), y(5632);
  auto pass = [&](bool int8) {
    const auto t0 = std::chrono::steady_clock::now();
    size_t off = 0;
    for (const Shape& m : mats) {
      const int64_t panels = kernels::panel_count(m.rows);
      pool.parallel_for(panels, [&](int64_t p0, int64_t p1) {
        const int64_t r0 = p0 * kernels::kPanelRows, r1 = std::min(m.rows, p1 * kernels::kPanelRows);
        if (int8)
          kernels::matmul_int8(x.data(), 1, kernels::Int8Weights{wq.ptr + off, nullptr, 32}, m.cols, y.data(), m.rows, r0, r1);
        else
          kernels::matmul_bf16(x.data(), 1, wb.ptr + off, m.cols, y.data(), m.rows, r0, r1);
      });
      off += int8 ? size_t(panels * kernels::int8_panel_bytes(m.cols, 32)) : size_t(m.rows * m.cols);
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  pass(false), pass(true);  // warm-up: first touches, thread start

  std::vector<double> read, copy, bf16, int8, bf16_frac, int8_frac;
  for (int r = 0; r < rounds; ++r) {
    read.push_back(kernels::read_bandwidth_gbs(threads, size_t(512) << 20, 3));
    copy.push_back(kernels::copy_bandwidth_gbs(threads, size_t(512) << 20, 3));
    bf16.push_back(double(bf16_bytes) / pass(false) / 1e9);
    int8.push_back(double(int8_bytes) / pass(true) / 1e9);
    bf16_frac.push_back(bf16.back() / read.back());
    int8_frac.push_back(int8.back() / read.back());
  }
  nlohmann::ordered_json out = {
      {"threads", threads}, {"simd", kernels::simd_level()}, {"layers", layers}, {"bf16_bytes", bf16_bytes}, {"int8_bytes", int8_bytes},
      {"read_gbs", median(read)}, {"copy_gbs", median(copy)}, {"bf16_gbs", median(bf16)}, {"int8_gbs", median(int8)},
      {"bf16_read_fraction", median(bf16_frac)}, {"int8_read_fraction", median(int8_frac)},
      {"rounds", nlohmann::json::array()}};
  for (int r = 0; r < rounds; ++r)
    out["rounds"].push_back({{"read_gbs", read[size_t(r)]}, {"copy_gbs", copy[size_t(r)]}, {"bf16_gbs", bf16[size_t(r)]},
                             {"int8_gbs", int8[size_t(r)]}});
  if (json) {
    std::printf("%s\n", out.dump().c_str());
    return 0;
  }
  std::printf("decode-step GEMV from memory, %d threads, %s: bf16 %.2f GB, int8 %.2f GB per pass\n", threads,
              kernels::simd_level(), double(bf16_bytes) / 1e9, double(int8_bytes) / 1e9);
  std::printf("round  read GB/s  copy GB/s  bf16 GB/s (of read)  int8 GB/s (of read)\n");
  for (int r = 0; r < rounds; ++r)
    std::printf("%5d  %9.1f  %9.1f  %9.1f (%4.0f%%)    %9.1f (%4.0f%%)\n", r + 1, read[size_t(r)], copy[size_t(r)],
                bf16[size_t(r)], 100 * bf16_frac[size_t(r)], int8[size_t(r)], 100 * int8_frac[size_t(r)]);
  std::printf("median %8.1f  %9.1f  %9.1f (%4.0f%%)    %9.1f (%4.0f%%)\n", median(read), median(copy), median(bf16),
              100 * median(bf16_frac), median(int8), 100 * median(int8_frac));
  return 0;
}

}  // namespace hpcinfer::cli
