// hpcinfer: the command line. Dispatches to one function per subcommand (core/cli/cmd_*.cpp).
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "core/cli/commands.hpp"
#include "core/config/config_error.hpp"
#include "hpcinfer/plugin.hpp"

namespace {

struct Command {
  const char* name;
  int (*fn)(const hpcinfer::cli::Args&);
  const char* help;
};

const Command kCommands[] = {
    {"run", hpcinfer::cli::cmd_run, "run CONFIG [--set k=v]...: one rank of an experiment (world from env or 1)"},
    {"serve", hpcinfer::cli::cmd_serve, "serve CONFIG [--port P]: OpenAI-compatible HTTP API over the engine (rank 0 listens)"},
    {"launch", hpcinfer::cli::cmd_launch, "launch -n N CONFIG [--set k=v]...: fork N local ranks of CONFIG"},
    {"generate", hpcinfer::cli::cmd_generate, "generate --model M --prompt TEXT -n N: print one completion"},
    {"logits", hpcinfer::cli::cmd_logits, "logits --model M --tokens 1,2,3 --out FILE: f32 [n_tokens][vocab]"},
    {"tokenize", hpcinfer::cli::cmd_tokenize, "tokenize --tokenizer PATH --text TEXT: print token ids"},
    {"plugins", hpcinfer::cli::cmd_plugins, "plugins: list every plugin found, and whether it is usable here"},
    {"plan", hpcinfer::cli::cmd_plan, "plan --show CONFIG: print each rank's layers, shards and comm steps"},
    {"bench", hpcinfer::cli::cmd_bench, "bench --model DIR: prefill/decode tokens/s against memory bandwidth"},
    {"bench-kernels", hpcinfer::cli::cmd_bench_kernels, "bench-kernels: one-thread L2-resident matmul rates vs the FMA peak"},
    {"bench-stream", hpcinfer::cli::cmd_bench_stream, "bench-stream: bf16/int8 GEMV streaming a decode step from memory vs the read bandwidth"},
    {"bench-comm", hpcinfer::cli::cmd_bench_comm, "bench-comm --comm gloo|mpi [--ranks N]: all-reduce latency and bandwidth, 8 B to 64 MiB"},
    {"agree", hpcinfer::cli::cmd_agree, "agree --model M --weights bf16 --weights-b int8 --prompts F: greedy agreement, KL"},
    {"eval", hpcinfer::cli::cmd_eval, "eval: perplexity and multiple-choice suites"},
    {"compare", hpcinfer::cli::cmd_compare, "compare RUN_A RUN_B: per-prompt agreement of two runs"},
    {"sweep", hpcinfer::cli::cmd_sweep, "sweep SWEEP.yaml: run a grid of experiments"},
    {"report", hpcinfer::cli::cmd_report, "report DIR...: tables and plots from runs"},
    {"make-model", hpcinfer::cli::cmd_make_model, "make-model --preset NAME --out DIR: random weights, real shape"},
    {"palu", hpcinfer::cli::cmd_palu, "palu compress --model M --ratio R --group-size G --calib FILE --out DIR: PaLU KV-cache variant"},
};

void usage(FILE* to) {
  std::fprintf(to, "hpcinfer %s: distributed LLM inference\n\nusage: hpcinfer COMMAND [options]   (COMMAND --help for more)\n\ncommands:\n",
               HPCINFER_VERSION);
  for (const auto& c : kCommands) std::fprintf(to, "  %-13s %s\n", c.name, c.help);
  std::fprintf(to, "\nexit codes: 0 ok, 1 runtime failure, 2 usage or configuration error\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    usage(stdout);
    return 0;
  }
  if (name == "--version") {
    std::printf("hpcinfer %s (plugin ABI %d)\n", HPCINFER_VERSION, int(hpcinfer::kPluginAbiVersion));
    return 0;
  }
  for (const auto& c : kCommands) {
    if (name != c.name) continue;
    hpcinfer::cli::Args args(argv + 2, argv + argc);
    try {
      return c.fn(args);
    } catch (const hpcinfer::ConfigError& e) {  // found after loading: e.g. a device / weights / transport mismatch
      std::fprintf(stderr, "%s\n", e.what());
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "hpcinfer %s: error: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "hpcinfer: unknown command '%s'\n\n", name.c_str());
  usage(stderr);
  return 2;
}
