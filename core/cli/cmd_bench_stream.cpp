// hpcinfer bench-stream [--threads 2] [--rounds 7] [--layers 22] [--json]
// The matmul kernels streaming one decode step's weights from memory, beside the machine's read and copy bandwidth
// measured in the same rounds: how close the bf16, int8 and int4 GEMVs come to the memory limit, apart from everything
// else a model does per token (attention, norms, synchronisation; `hpcinfer bench` measures the whole model).
// The weights: tinyllama-1.1b's 22 layers (q, k, v, o, gate, up, down: 968M weights) packed as the plugins pack
// them (16-row panels), one parallel matmul per matrix on the thread pool, batch 1, as in a decode step.
// Each round runs the read probe, the copy probe and one pass per format (bf16, int8, int4) back to back; this shared
// machine's bandwidth moves between rounds, so each pass is compared with the read probe of its own round.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
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
  CLI::App app{"bf16, int8 and int4 GEMVs streaming a decode step's weights from memory, beside the read/copy bandwidth",
               "hpcinfer bench-stream"};
  int threads = 2, rounds = 7, layers = 22;
  bool json = false;
  app.add_option("--threads", threads, "threads (default 2)")->check(CLI::PositiveNumber);
  app.add_option("--rounds", rounds, "rounds of probes + one pass per format (default 7)")->check(CLI::PositiveNumber);
  app.add_option("--layers", layers, "layers of tinyllama-1.1b shapes to stream (default 22, all)")
      ->check(CLI::Range(1, 22));
  app.add_flag("--json", json, "print one JSON object");
  if (auto rc = parse_args(app, args)) return *rc;

  std::vector<Shape> mats;
  for (int l = 0; l < layers; ++l)
    for (Shape s : {Shape{2048, 2048}, Shape{256, 2048}, Shape{256, 2048}, Shape{2048, 2048}, Shape{5632, 2048},
                    Shape{5632, 2048}, Shape{2048, 5632}})
      mats.push_back(s);
  // Each format's weights packed as its plugin packs them; the values do not change the speed (bf16 ones, int8 and
  // int4 panels as their init functions leave them: q = 0, scale 0).
  struct Format {
    const char* name;
    size_t (*matrix_bytes)(const Shape&);
    void (*init)(const Shape&, uint8_t*);
    void (*gemv)(const float* x, const uint8_t* w, const Shape&, float* y, int64_t r0, int64_t r1);
    size_t bytes = 0;
  };
  std::vector<Format> formats = {
      {"bf16", [](const Shape& m) { return size_t(m.rows * m.cols) * 2; },
       [](const Shape& m, uint8_t* w) { std::fill_n(reinterpret_cast<uint16_t*>(w), m.rows * m.cols, uint16_t(0x3f80)); },
       [](const float* x, const uint8_t* w, const Shape& m, float* y, int64_t r0, int64_t r1) {
         kernels::matmul_bf16(x, 1, reinterpret_cast<const uint16_t*>(w), m.cols, y, m.rows, r0, r1);
       }},
      {"int8", [](const Shape& m) { return size_t(kernels::panel_count(m.rows) * kernels::int8_panel_bytes(m.cols, 32)); },
       [](const Shape& m, uint8_t* w) {
         for (int64_t p = 0; p < kernels::panel_count(m.rows); ++p)
           kernels::init_int8_panel(m.cols, 32, w + p * kernels::int8_panel_bytes(m.cols, 32));
       },
       [](const float* x, const uint8_t* w, const Shape& m, float* y, int64_t r0, int64_t r1) {
         kernels::matmul_int8(x, 1, kernels::Int8Weights{w, nullptr, 32}, m.cols, y, m.rows, r0, r1);
       }},
      {"int4", [](const Shape& m) { return size_t(kernels::panel_count(m.rows) * kernels::int4_panel_bytes(m.cols)); },
       [](const Shape& m, uint8_t* w) {
         for (int64_t p = 0; p < kernels::panel_count(m.rows); ++p)
           kernels::init_int4_panel(m.cols, false, w + p * kernels::int4_panel_bytes(m.cols));
       },
       [](const float* x, const uint8_t* w, const Shape& m, float* y, int64_t r0, int64_t r1) {
         kernels::matmul_int4(x, 1, {w, false}, m.cols, y, m.rows, r0, r1);
       }}};
  std::vector<std::unique_ptr<plugins::HugeBuffer<uint8_t>>> buffers;
  for (Format& f : formats) {
    for (const Shape& m : mats) f.bytes += f.matrix_bytes(m);
    buffers.push_back(std::make_unique<plugins::HugeBuffer<uint8_t>>(f.bytes));
    for (size_t off = 0; const Shape& m : mats) f.init(m, buffers.back()->ptr + off), off += f.matrix_bytes(m);
  }
  ThreadPool pool(threads);
  std::vector<float> x(5632, 0.01f), y(5632);
  auto pass = [&](size_t k) {
    const Format& f = formats[k];
    const auto t0 = std::chrono::steady_clock::now();
    size_t off = 0;
    for (const Shape& m : mats) {
      const uint8_t* w = buffers[k]->ptr + off;
      pool.parallel_for(kernels::panel_count(m.rows), [&](int64_t p0, int64_t p1) {
        f.gemv(x.data(), w, m, y.data(), p0 * kernels::kPanelRows, std::min(m.rows, p1 * kernels::kPanelRows));
      });
      off += f.matrix_bytes(m);
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  for (size_t k = 0; k < formats.size(); ++k) pass(k);  // warm-up: first touches, thread start

  std::vector<double> read, copy;
  std::vector<std::vector<double>> gbs(formats.size()), frac(formats.size());
  for (int r = 0; r < rounds; ++r) {
    read.push_back(kernels::read_bandwidth_gbs(threads, size_t(512) << 20, 3));
    copy.push_back(kernels::copy_bandwidth_gbs(threads, size_t(512) << 20, 3));
    for (size_t k = 0; k < formats.size(); ++k) {
      gbs[k].push_back(double(formats[k].bytes) / pass(k) / 1e9);
      frac[k].push_back(gbs[k].back() / read.back());
    }
  }
  nlohmann::ordered_json out = {{"threads", threads}, {"simd", kernels::simd_level()}, {"layers", layers}};
  for (const Format& f : formats) out[std::string(f.name) + "_bytes"] = f.bytes;
  out["read_gbs"] = median(read);
  out["copy_gbs"] = median(copy);
  for (size_t k = 0; k < formats.size(); ++k) {
    out[std::string(formats[k].name) + "_gbs"] = median(gbs[k]);
    out[std::string(formats[k].name) + "_read_fraction"] = median(frac[k]);
  }
  out["rounds"] = nlohmann::json::array();
  for (int r = 0; r < rounds; ++r) {
    nlohmann::ordered_json row = {{"read_gbs", read[size_t(r)]}, {"copy_gbs", copy[size_t(r)]}};
    for (size_t k = 0; k < formats.size(); ++k) row[std::string(formats[k].name) + "_gbs"] = gbs[k][size_t(r)];
    out["rounds"].push_back(row);
  }
  if (json) {
    std::printf("%s\n", out.dump().c_str());
    return 0;
  }
  std::printf("decode-step GEMV from memory, %d threads, %s; GB per pass:", threads, kernels::simd_level());
  for (const Format& f : formats) std::printf(" %s %.2f", f.name, double(f.bytes) / 1e9);
  std::printf("\nround  read GB/s  copy GB/s");
  for (const Format& f : formats) std::printf("  %4s GB/s (of read)", f.name);
  std::printf("\n");
  auto row = [&](const char* label, double rd, double cp, const std::vector<double>& g, const std::vector<double>& fr) {
    std::printf("%-6s %9.1f  %9.1f", label, rd, cp);
    for (size_t k = 0; k < formats.size(); ++k) std::printf("  %9.1f (%4.0f%%)   ", g[k], 100 * fr[k]);
    std::printf("\n");
  };
  for (int r = 0; r < rounds; ++r) {
    std::vector<double> g, fr;
    for (size_t k = 0; k < formats.size(); ++k) g.push_back(gbs[k][size_t(r)]), fr.push_back(frac[k][size_t(r)]);
    row(std::to_string(r + 1).c_str(), read[size_t(r)], copy[size_t(r)], g, fr);
  }
  std::vector<double> g, fr;
  for (size_t k = 0; k < formats.size(); ++k) g.push_back(median(gbs[k])), fr.push_back(median(frac[k]));
  row("median", median(read), median(copy), g, fr);
  return 0;
}

}  // namespace hpcinfer::cli
