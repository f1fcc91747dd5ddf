// hpcinfer eval ppl --model M [--data FILE | --fallback] [--ctx 512] [--stride 256] [--limit-tokens N] [--json]
// Perplexity of a text: BOS + the tokenized text (CRLF read as LF), scored with a strided sliding window
// (core/eval/perplexity.hpp). Default text: WikiText-2 test; when that file is absent (and no --data is given) the
// built-in fallback corpus, and the output says so.
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/cli/cli_util.hpp"
#include "core/tokenizer/prompt_ids.hpp"
#include "core/cli/eval_commands.hpp"
#include "core/cli/single_process.hpp"
#include "core/eval/fallback_corpus.hpp"
#include "core/eval/perplexity.hpp"
#include "core/eval/text_file.hpp"

namespace hpcinfer::cli {

int cmd_eval_ppl(const Args& args) {
  CLI::App app{"Perplexity over a text (default WikiText-2 test) with a strided sliding window", "hpcinfer eval ppl"};
  ModelOptions mo;
  mo.add_to(app);
  const std::string default_data = std::string(kDefaultEvalDataDir) + "/wikitext-2-raw/wiki.test.raw";
  std::string data;
  bool fallback = false, json = false;
  int ctx = 512, stride = 256;
  long long limit_tokens = 0;
  app.add_option("--data", data, "text file (.bz2 too); default " + default_data);
  app.add_flag("--fallback", fallback, "measure the built-in fallback corpus (not WikiText-2)");
  app.add_option("--ctx", ctx, "window length in tokens (default 512)");
  app.add_option("--stride", stride, "tokens between window starts, 1..ctx (default 256)");
  app.add_option("--limit-tokens", limit_tokens, "score only the first N tokens of the text (0 = all)");
  app.add_flag("--json", json, "print one JSON object");
  if (auto rc = parse_args(app, args)) return *rc;
  if (ctx < 2 || stride < 1 || stride > ctx) {
    std::fprintf(stderr, "hpcinfer eval ppl: need --ctx >= 2 and 1 <= --stride <= --ctx (got ctx %d, stride %d)\n",
                 ctx, stride);
    return 2;
  }
  if (limit_tokens < 0) {
    std::fprintf(stderr, "hpcinfer eval ppl: --limit-tokens must be >= 0\n");
    return 2;
  }
  if (fallback && !data.empty()) {
    std::fprintf(stderr, "hpcinfer eval ppl: --data and --fallback exclude each other\n");
    return 2;
  }
  if (!data.empty() && !std::filesystem::is_regular_file(data)) {
    std::fprintf(stderr, "hpcinfer eval ppl: --data %s: no such file\n", data.c_str());
    return 2;
  }

  // Which text: --data, else WikiText-2 where it is, else the fallback (said on stderr and in the output).
  std::string corpus, source, text;
  if (!fallback && data.empty() && std::filesystem::is_regular_file(default_data)) data = default_data;
  if (!data.empty()) {
    text = eval::read_text_file(data);
    corpus = std::filesystem::path(data).filename() == "wiki.test.raw" ? "wikitext-2-test" : "file";
    source = data;
  } else {
    if (!fallback)
      std::fprintf(stderr, "hpcinfer eval ppl: note: %s not found; measuring the built-in fallback corpus instead\n",
                   default_data.c_str());
    text = std::string(eval::fallback_corpus());
    corpus = "fallback";
    source = std::string(eval::kFallbackCorpusName);
  }

  auto s = open_single_process(mo, 1, ctx, true);
  const int model_ctx = s->model->desc().max_seq_len;
  if (ctx > model_ctx)
    std::fprintf(stderr, "hpcinfer eval ppl: warning: --ctx %d exceeds the model's context length %d\n", ctx,
                 model_ctx);
  const auto t0 = std::chrono::steady_clock::now();
  const Tokenizer& tok = *s->tokenizer;
  std::vector<int> tokens = prompt_ids(tok, text, {"auto", false, /*corpus=*/true});
  const double tokenize_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const long long tokens_in_text = static_cast<long long>(tokens.size());
  if (limit_tokens > 0 && limit_tokens < tokens_in_text) tokens.resize(size_t(limit_tokens));
  if (tokens.size() < 2) {
    std::fprintf(stderr, "hpcinfer eval ppl: %s: fewer than 2 tokens, nothing to score\n", source.c_str());
    return 2;
  }

  eval::SequenceScorer scorer(*s, 1);
  const eval::PerplexityResult r = eval::perplexity(scorer, tokens, ctx, stride, eval_progress);
  const double tok_per_s = r.seconds > 0 ? double(r.tokens_scored) / r.seconds : 0.0;
  if (json) {
    nlohmann::ordered_json j = {
        {"suite", "ppl"}, {"model", mo.model}, {"tokenizer", tok.source()}, {"weights", s->weights_plugin},
        {"corpus", corpus}, {"data", source}, {"text_bytes", text.size()}, {"tokens_in_text", tokens_in_text},
        {"tokens_used", tokens.size()}, {"ctx", ctx}, {"stride", stride}, {"windows", r.windows},
        {"tokens_scored", r.tokens_scored}, {"tokens_forwarded", r.tokens_forwarded}, {"nll_sum", r.nll_sum},
        {"nll_mean", r.nll_mean()}, {"perplexity", r.perplexity()}, {"seconds", r.seconds},
        {"tokens_per_s", tok_per_s}, {"tokenize_s", tokenize_s}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  const std::string used =
      tokens.size() < size_t(tokens_in_text) ? ", first " + std::to_string(tokens.size()) + " used" : "";
  std::printf("corpus: %s (%s), %zu bytes, %lld tokens%s\n", corpus.c_str(), source.c_str(), text.size(),
              tokens_in_text, used.c_str());
  std::printf("model: %s (%s), ctx %d, stride %d, %d windows\n", mo.model.c_str(), s->weights_plugin.c_str(), ctx,
              stride, r.windows);
  std::printf("tokens scored %lld, NLL mean %.4f nats, perplexity %.4f, %.0f tokens/s (%.2f s)\n", r.tokens_scored,
              r.nll_mean(), r.perplexity(), tok_per_s, r.seconds);
  return 0;
}

}  // namespace hpcinfer::cli
