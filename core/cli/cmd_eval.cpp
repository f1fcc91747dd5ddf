// hpcinfer eval SUITE ...: evaluation suites on a single process.
//   ppl  perplexity over WikiText-2 (or a built-in fallback text) with a strided sliding window
//   mc   multiple choice (PIQA, HellaSwag) by log-likelihood of each ending
//   infer  prefill and decode tokens/s over a grid of batch sizes and lengths
#include <cstdio>
#include <string>

#include "core/cli/eval_commands.hpp"

namespace hpcinfer::cli {

namespace {
void eval_usage(FILE* to) {
  std::fprintf(to,
               "usage: hpcinfer eval SUITE [options]   (hpcinfer eval SUITE --help for more)\n\n"
               "suites:\n"
               "  ppl  --model M [--data FILE] [--ctx 512] [--stride 256] [--limit-tokens N] [--json]\n"
               "       perplexity over WikiText-2 test (default %s/wikitext-2-raw/wiki.test.raw;\n"
               "       a built-in fallback text when it is absent), strided sliding window\n"
               "  mc   --task piqa|hellaswag --model M [--data FILE] [--limit N] [--json]\n"
               "       multiple choice by log-likelihood of each ending: acc and acc_norm with standard errors\n"
               "  infer --model M [--weights W] [--threads N] [--warmup 1] [--trials 3] [--quick] [--json]\n"
               "       prefill and decode tokens/s over batch x length (mean/std/p50/p90/p99 over trials)\n",
               kDefaultEvalDataDir);
}
}  // namespace

int cmd_eval(const Args& args) {
  if (args.empty()) {
    eval_usage(stderr);
    return 2;
  }
  const std::string suite = args[0];
  const Args rest(args.begin() + 1, args.end());
  if (suite == "ppl") return cmd_eval_ppl(rest);
  if (suite == "mc") return cmd_eval_mc(rest);
  if (suite == "infer") return cmd_eval_infer(rest);
  if (suite == "--help" || suite == "-h" || suite == "help") {
    eval_usage(stdout);
    return 0;
  }
  std::fprintf(stderr, "hpcinfer eval: unknown suite '%s' (known: ppl, mc, infer)\n\n", suite.c_str());
  eval_usage(stderr);
  return 2;
}

}  // namespace hpcinfer::cli
