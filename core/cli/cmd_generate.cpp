// hpcinfer generate --model M [--tokenizer T] --prompt TEXT -n N [--temperature T]: prints the completion only.
#include <algorithm>
#include <cstdint>
#include <cstdio>

#include "core/cli/cli_util.hpp"
#include "core/config/load_config.hpp"
#include "core/cli/single_process.hpp"
#include "core/runtime/pipeline_engine.hpp"
#include "core/tokenizer/prompt_ids.hpp"

namespace hpcinfer::cli {

int cmd_generate(const Args& args) {
  CLI::App app{"Generate one completion in a single process and print it (the completion only)", "hpcinfer generate"};
  ModelOptions mo;
  mo.add_to(app);
  std::string prompt;
  int n = 64;
  EngineOptions opt;
  GenerationParams gp;
  bool chat = false;
  app.add_option("--prompt", prompt, "prompt text (empty: start from BOS)");
  app.add_option("-n,--max-new-tokens", n, "tokens to generate")->check(CLI::PositiveNumber);
  app.add_option("--temperature", gp.sampling.temperature, "0 = greedy")->check(CLI::NonNegativeNumber);
  app.add_option("--top-k", gp.sampling.top_k, "keep the k most likely tokens (0 = off)");
  app.add_option("--top-p", gp.sampling.top_p, "nucleus sampling mass (1 = off)");
  app.add_option("--min-p", gp.sampling.min_p, "drop tokens below min_p x the best probability");
  app.add_option("--seed", gp.seed, "random seed");
  app.add_option("--stop", gp.stop_strings, "stop string (repeatable)");
  app.add_flag("--chat", chat, "wrap the prompt in the tokenizer's chat template");
  std::string add_bos = "auto";
  app.add_option("--add-bos", add_bos, "auto (the model files' setting) | true | false")
      ->check(CLI::IsMember({"auto", "true", "false"}));
  if (auto rc = parse_args(app, args)) return *rc;
  {  // the flags obey the same ranges as their YAML keys (one rule: config_schema.cpp)
    ExperimentConfig c;
    c.generation.temperature = gp.sampling.temperature;
    c.generation.top_k = gp.sampling.top_k;
    c.generation.top_p = gp.sampling.top_p;
    c.generation.min_p = gp.sampling.min_p;
    for (const auto& [flag, key] : {std::pair{"--temperature", "generation.temperature"}, {"--top-k", "generation.top_k"},
                                    {"--top-p", "generation.top_p"}, {"--min-p", "generation.min_p"}})
      if (const std::string why = config_range_error(c, key); !why.empty()) {
        std::fprintf(stderr, "hpcinfer generate: %s: %s\n", flag, why.c_str());
        return 2;
      }
    if (const std::string why = mo.range_error(); !why.empty()) {
      std::fprintf(stderr, "hpcinfer generate: %s\n", why.c_str());
      return 2;
    }
  }

  // Open the tokenizer first to size the context from the prompt.
  auto probe = describe_rank([&] {
    ExperimentConfig c;
    c.model.path = mo.model;
    c.model.format = mo.format;
    return c;
  }(), LaunchEnv{});
  auto tok = open_tokenizer(mo.tokenizer, *probe->model);
  Request r;
  r.id = "0";
  r.prompt = prompt;
  r.prompt_ids = prompt_ids(*tok, prompt, {add_bos, chat, false});
  gp.max_new_tokens = n;
  r.params = gp;

  // Beyond the model's stated context: a warning, not a refusal (as llama.cpp, whose outputs these commands are
  // compared with; some files state less than the model takes). `run` and `serve` hold it as a limit.
  const int max_seq = probe->model->desc().max_seq_len;
  if (int64_t(r.prompt_ids.size()) + n > max_seq)
    std::fprintf(stderr, "hpcinfer generate: warning: %zu prompt + %d new tokens run past the model's max_seq_len %d "
                         "(positions it was not trained for)\n", r.prompt_ids.size(), n, max_seq);
  probe.reset();

  auto s = open_single_process(mo, 1, int(std::min<int64_t>(int64_t(r.prompt_ids.size()) + n + 1, INT32_MAX)), false);
  opt.stop_ids = tok->stop_ids();
  PipelineEngine engine(*s->stage, nullptr, tok.get(), opt);
  std::string out;
  engine.run({r}, [&](const Completion& c) { out = c.text; });
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fputc('\n', stdout);
  return 0;
}

}  // namespace hpcinfer::cli
