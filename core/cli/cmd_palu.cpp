// hpcinfer palu compress --model M --ratio R --group-size G --calib FILE [--calib-tokens N] [--calib-skip-tokens K]
//                        [--whitening cholesky|none] [--rank-multiple 8] [--dtype f32|bf16] [--threads N] --out DIR
// Writes the PaLU variant of M (core/palu/palu_compress.hpp) as a Hugging Face directory that every command loads
// like any model (`run`, `serve`, `eval`, `plan --show`). Bad options exit 2 naming the option.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <stdexcept>

#include "core/cli/cli_util.hpp"
#include "core/cli/commands.hpp"
#include "core/palu/palu_compress.hpp"

namespace hpcinfer::cli {
namespace {

int cmd_palu_compress(const Args& args) {
  CLI::App app{"Compress a model's KV cache with PaLU low-rank projections", "hpcinfer palu compress"};
  palu::CompressOptions o;
  app.add_option("--model", o.model, "source model: HF directory, .gguf or llama2.c .bin")->required();
  app.add_option("--format", o.format, "auto | hf | gguf | llama2c");
  app.add_option("--out", o.out, "output directory (new or empty)")->required();
  app.add_option("--ratio", o.ratio, "fraction of each group's rank kept, in (0, 1] (default 0.7)");
  app.add_option("--group-size", o.group_size, "kv heads per group; must divide the kv heads (default 4)");
  app.add_option("--calib", o.calib, "calibration text file (.bz2 too); keep it apart from the evaluation text");
  app.add_option("--tokenizer", o.tokenizer, "tokenizer of the calibration text (default: the model's own)");
  app.add_option("--calib-tokens", o.calib_tokens, "calibration tokens (default 4096)");
  app.add_option("--calib-skip-tokens", o.calib_skip_tokens,
                 "start this many tokens into the calibration file (a range disjoint from the evaluated one)");
  app.add_option("--calib-seq-len", o.calib_seq_len, "tokens per calibration sequence (default 512)");
  app.add_option("--whitening", o.whitening, "cholesky (SVD-LLM whitening, needs --calib) | none (plain SVD)");
  app.add_option("--rank-multiple", o.rank_multiple, "ranks rounded to a multiple of this (default 8)");
  app.add_option("--dtype", o.dtype, "f32 | bf16 for every tensor written (default f32)");
  app.add_option("--threads", o.threads, "threads of the calibration pass (0 = all cores)");
  if (auto rc = parse_args(app, args)) return *rc;
  try {
    const palu::CompressReport r = palu::compress(o, [](const std::string& line) {
      std::fprintf(stderr, "palu: %s\n", line.c_str());
    });
    std::printf("palu compress: wrote %s: %d layers, rank %lld (k) / %lld (v) per group of %d kv heads, KV cache "
                "%.0f -> %.0f bytes per token (f32, %.3fx), %lld calibration tokens, %.1f s\n",
                o.out.c_str(), int(r.rank_k.size()), (long long)(r.rank_k.empty() ? 0 : r.rank_k[0]),
                (long long)(r.rank_v.empty() ? 0 : r.rank_v[0]), o.group_size, r.kv_bytes_per_token_before,
                r.kv_bytes_per_token_after, r.kv_bytes_per_token_after / r.kv_bytes_per_token_before,
                (long long)r.calib_tokens_used, r.seconds);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "hpcinfer palu compress: %s\n", e.what());
    return 2;
  }
  return 0;
}

}  // namespace

int cmd_palu(const Args& args) {
  if (!args.empty() && args[0] == "compress") return cmd_palu_compress(Args(args.begin() + 1, args.end()));
  std::fprintf(args.empty() || args[0] != "--help" ? stderr : stdout,
               "usage: hpcinfer palu compress --model M --ratio R --group-size G --calib FILE [--calib-tokens N]\n"
               "                              [--calib-skip-tokens K] [--whitening cholesky|none] --out DIR\n");
  return !args.empty() && args[0] == "--help" ? 0 : 2;
}

}  // namespace hpcinfer::cli
