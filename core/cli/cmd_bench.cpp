// hpcinfer bench --model DIR [--weights bf16|int8|f32] [--threads N] [--json]
// Prefill and decode speed of one process, next to the limits of the same machine measured by the same command
// (STREAM-style copy bandwidth, read bandwidth, peak f32 FMA rate), so every speed is also a roofline fraction.
//   prefill: one forward pass over --prompt-tokens random ids (one sequence), timed end to end (embedding to logits).
//   decode b1: --decode-tokens greedy steps of that sequence (context grows from the prompt length), --trials times,
//              each trial right after its own copy and read bandwidth probes: this machine's bandwidth moves with
//              other tenants' traffic (seen: 28-44 GB/s within a minute), so each trial is compared with the
//              bandwidth measured next to it. Reported: the median trial's tok/s, the median of the per-trial
//              roofline fractions, the median probe figures; every trial in the JSON.
//   decode b8: --batch sequences (16-token prefixes), --decode-tokens steps of --batch tokens each, --trials times.
// Bytes per decoded token = weights streamed (all matrices but the embedding table) + the KV cache read at the
// mean decode context. Roofline fraction = bytes/token x tokens/s / copy bandwidth (per trial, then the median).
#include <sys/utsname.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/cli/cli_util.hpp"
#include "core/eval/sample_stats.hpp"
#include "core/model/cost_model.hpp"
#include "core/cli/single_process.hpp"
#include "kernels/cpu/machine_probe.hpp"

namespace hpcinfer::cli {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}


double median(const std::vector<double>& v) { return eval::percentile(v, 0.5); }

}  // namespace

int cmd_bench(const Args& args) {
  CLI::App app{"Measure prefill/decode tokens/s against this machine's memory bandwidth and FMA peak", "hpcinfer bench"};
  ModelOptions mo;
  mo.add_to(app);
  int prompt = 512, decode = 32, batch = 8, bw_mib = 512, probe_reps = 5, trials = 5;
  bool json = false;
  app.add_option("--prompt-tokens", prompt, "prefill length (default 512)")->check(CLI::PositiveNumber);
  app.add_option("--decode-tokens", decode, "decode steps per measurement (default 32)")->check(CLI::PositiveNumber);
  app.add_option("--batch", batch, "sequences decoded together for decode_b8 (default 8)")->check(CLI::PositiveNumber);
  app.add_option("--bw-mib", bw_mib, "buffer size of the bandwidth probes, MiB (default 512)")->check(CLI::PositiveNumber);
  app.add_option("--trials", trials, "decode measurements, each beside its own bandwidth probes; medians are reported (default 5)")->check(CLI::PositiveNumber);
  app.add_flag("--json", json, "print one JSON object instead of a table");
  if (auto rc = parse_args(app, args)) return *rc;

  const int max_ctx = prompt + decode + 16 + 1;
  auto s = open_single_process(mo, std::max(batch, 1), max_ctx, false);
  const int threads = s->threads();
  const ModelDesc& m = s->model->desc();
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> tok(3, int(m.vocab) - 1);

  // Warm-up, untimed: a short sequence in the last slot, prefilled and decoded a few steps. The first passes over
  // freshly packed weights run well below the steady speed on these VMs (seen: 6 vs 14 tok/s), hence also trials.
  {
    const int last = std::max(batch, 1) - 1;
    TokenBatch b;
    for (int i = 0; i < 8; ++i) b.tokens.push_back(tok(rng)), b.slot.push_back(last), b.pos.push_back(i);
    int t = greedy_step(*s, b, {7})[0];
    for (int i = 8; i < 16; ++i) t = greedy_step(*s, TokenBatch{{t}, {last}, {i}}, {0})[0];
  }

  // Machine limits, with the model in memory (the same conditions as the kernels). The FMA peak once; the
  // bandwidths again beside every decode trial.
  // On a device backend the limit is the device's own copy bandwidth (Backend::copy_bandwidth, device to device,
  // read + write counted as for the CPU probes); no FMA peak is probed there (0: fractions not reported).
  const bool on_device = s->backend->memory_space() != MemorySpace::host;
  const size_t bw_bytes = size_t(bw_mib) << 20;
  const double fma_peak = on_device ? 0.0 : kernels::fma_peak_gflops(threads, 10 * probe_reps);

  // Prefill: one sequence of `prompt` tokens in slot 0, logits of the last position.
  TokenBatch pre;
  for (int i = 0; i < prompt; ++i) pre.tokens.push_back(tok(rng)), pre.slot.push_back(0), pre.pos.push_back(i);
  auto t0 = Clock::now();
  const int first = greedy_step(*s, pre, {prompt - 1})[0];
  const double prefill_s = since(t0);

  // Decode, batch 1: each trial continues slot 0 from the prompt (the same context lengths every trial), right after
  // its own bandwidth probes (3 repetitions each, the best: as long as a few decode steps).
  std::vector<double> b1_tok_s, copy_bw_t, read_bw_t;
  for (int trial = 0; trial < trials; ++trial) {
    if (on_device) {
      copy_bw_t.push_back(s->backend->copy_bandwidth(bw_bytes) / 1e9);
      read_bw_t.push_back(copy_bw_t.back());
    } else {
      copy_bw_t.push_back(kernels::copy_bandwidth_gbs(threads, bw_bytes, 3));
      read_bw_t.push_back(kernels::read_bandwidth_gbs(threads, bw_bytes, 3));
    }
    int next = first;
    t0 = Clock::now();
    for (int t = 0; t < decode; ++t) next = greedy_step(*s, TokenBatch{{next}, {0}, {prompt + t}}, {0})[0];
    b1_tok_s.push_back(decode / since(t0));
  }

  // Decode, batch `batch`: 16-token prefixes in every slot (not timed), then trials of `decode` steps.
  TokenBatch prefix;
  std::vector<int> last_rows;
  for (int q = 0; q < batch; ++q) {
    for (int i = 0; i < 16; ++i) prefix.tokens.push_back(tok(rng)), prefix.slot.push_back(q), prefix.pos.push_back(i);
    last_rows.push_back(q * 16 + 15);
  }
  const std::vector<int> first_b = greedy_step(*s, prefix, last_rows);
  std::vector<int> rows(static_cast<size_t>(batch));
  for (int q = 0; q < batch; ++q) rows[size_t(q)] = q;
  std::vector<double> b8_tok_s;
  for (int trial = 0; trial < trials; ++trial) {
    std::vector<int> cur = first_b;
    t0 = Clock::now();
    for (int t = 0; t < decode; ++t) {
      TokenBatch b;
      for (int q = 0; q < batch; ++q) b.tokens.push_back(cur[size_t(q)]), b.slot.push_back(q), b.pos.push_back(16 + t);
      cur = greedy_step(*s, b, rows);
    }
    b8_tok_s.push_back(double(batch) * decode / since(t0));
  }

  // Work per token (core/model/cost_model.hpp).
  const RankCost cost = rank_cost(m, s->plan, s->weights.get());
  const double mean_ctx = prompt + (decode - 1) / 2.0 + 1;
  const double weight_bytes = double(s->stage->streamed_weight_bytes());
  const double bytes_per_token = weight_bytes + cost.kv_bytes_per_token * mean_ctx;
  // Prefill flops: 2 per weight per token (the head only for the last position), plus attention (q.k and p.v over
  // the causal prefix: 2 x 2 x q_dim x pos).
  const double head_params = double(m.dim) * double(m.vocab);
  const double attn_flops = 4.0 * cost.attention_width * (double(prompt) * (prompt + 1) / 2);
  const double prefill_flops = 2.0 * (cost.matmul_params - head_params) * prompt + 2.0 * head_params + attn_flops;

  const double prefill_tok_s = prompt / prefill_s, decode_tok_s = median(b1_tok_s),
               decode_b8_tok_s = median(b8_tok_s);
  const double achieved_gbs = bytes_per_token * decode_tok_s / 1e9;
  std::vector<double> fraction_t, fraction_read_t;
  for (size_t t = 0; t < b1_tok_s.size(); ++t) {
    fraction_t.push_back(bytes_per_token * b1_tok_s[t] / 1e9 / copy_bw_t[t]);
    fraction_read_t.push_back(bytes_per_token * b1_tok_s[t] / 1e9 / read_bw_t[t]);
  }
  const double copy_bw = median(copy_bw_t), read_bw = median(read_bw_t), fraction = median(fraction_t),
               fraction_read = median(fraction_read_t);
  const double prefill_gflops = prefill_flops / prefill_s / 1e9;
  utsname u{};
  uname(&u);
  nlohmann::ordered_json j = {
      {"model", mo.model}, {"weights", s->weights_plugin}, {"threads", threads}, {"host", u.nodename},
      {"cpu", cpu_model()}, {"simd", kernels::simd_level()}, {"device", s->backend->description()},
      {"prompt_tokens", prompt}, {"decode_tokens", decode}, {"batch", batch},
      {"prefill_tok_s", prefill_tok_s}, {"decode_tok_s", decode_tok_s}, {"decode_b8_tok_s", decode_b8_tok_s},
      {"mem_bw_gbs", copy_bw}, {"read_bw_gbs", read_bw}, {"fma_peak_gflops", fma_peak},
      {"weight_bytes_streamed", weight_bytes}, {"bytes_per_token", bytes_per_token},
      {"decode_gbs", achieved_gbs}, {"roofline_fraction", fraction}, {"roofline_fraction_read_bw", fraction_read},
      {"prefill_gflops", prefill_gflops}, {"prefill_peak_fraction", fma_peak > 0 ? prefill_gflops / fma_peak : 0.0},
      {"decode_tok_s_trials", b1_tok_s}, {"mem_bw_gbs_trials", copy_bw_t}, {"read_bw_gbs_trials", read_bw_t},
      {"roofline_fraction_trials", fraction_t}, {"decode_b8_tok_s_trials", b8_tok_s}};
  if (json) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("model %s, weights %s, %d threads, %s (%s)\n", mo.model.c_str(), s->weights_plugin.c_str(), threads,
              cpu_model().c_str(), kernels::simd_level());
  std::printf("machine   copy %.1f GB/s, read %.1f GB/s (medians of %d probes), f32 FMA peak %.1f GFLOP/s\n", copy_bw,
              read_bw, trials, fma_peak);
  std::printf("prefill   %d tokens: %.2f tok/s, %.1f GFLOP/s = %.0f%% of the FMA peak\n", prompt, prefill_tok_s,
              prefill_gflops, 100 * prefill_gflops / fma_peak);
  std::printf("decode b1 %.2f tok/s, %.1f MB/token, %.1f GB/s = %.0f%% of copy bandwidth (%.0f%% of read; medians of "
              "per-trial fractions)\n",
              decode_tok_s, bytes_per_token / 1e6, achieved_gbs, 100 * fraction, 100 * fraction_read);
  std::printf("decode b%d %.2f tok/s\n", batch, decode_b8_tok_s);
  return 0;
}

}  // namespace hpcinfer::cli
