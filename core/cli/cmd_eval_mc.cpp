// hpcinfer eval mc --task piqa|hellaswag --model M [--data FILE] [--labels FILE] [--limit N] [--json]
// Multiple choice by log-likelihood of each ending given the context (core/eval/multiple_choice.hpp): acc and
// acc_norm (per-byte), each with its standard error sqrt(p (1 - p) / n). --limit N takes the first N items.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/cli/cli_util.hpp"
#include "core/cli/eval_commands.hpp"
#include "core/cli/single_process.hpp"
#include "core/eval/multiple_choice.hpp"

namespace hpcinfer::cli {

int cmd_eval_mc(const Args& args) {
  CLI::App app{"Multiple choice (PIQA, HellaSwag) by log-likelihood of each ending", "hpcinfer eval mc"};
  ModelOptions mo;
  mo.add_to(app);
  std::string task, data, labels;
  int limit = 0;
  bool json = false;
  app.add_option("--task", task, "piqa | hellaswag")->required();
  app.add_option("--data", data,
                 std::string("items; default ") + kDefaultEvalDataDir + "/piqa/valid.jsonl or " + kDefaultEvalDataDir +
                     "/hellaswag/hellaswag_val_full.txt.bz2");
  app.add_option("--labels", labels, "piqa: labels file (default: valid-labels.lst beside --data)");
  app.add_option("--limit", limit, "the first N items only (0 = all)");
  app.add_flag("--json", json, "print one JSON object");
  if (auto rc = parse_args(app, args)) return *rc;
  if (task != "piqa" && task != "hellaswag") {
    std::fprintf(stderr, "hpcinfer eval mc: unknown task '%s' (known: piqa, hellaswag)\n", task.c_str());
    return 2;
  }
  if (limit < 0) {
    std::fprintf(stderr, "hpcinfer eval mc: --limit must be >= 0\n");
    return 2;
  }
  const std::string dir = kDefaultEvalDataDir;
  if (data.empty()) data = task == "piqa" ? dir + "/piqa/valid.jsonl" : dir + "/hellaswag/hellaswag_val_full.txt.bz2";
  if (task == "piqa" && labels.empty())
    labels = (std::filesystem::path(data).parent_path() / "valid-labels.lst").string();
  for (const std::string& f : {data, labels}) {
    if (!f.empty() && !std::filesystem::is_regular_file(f)) {
      std::fprintf(stderr, "hpcinfer eval mc: %s data file not found: %s\n", task.c_str(), f.c_str());
      return 2;
    }
  }

  const std::vector<eval::McItem> items =
      task == "piqa" ? eval::load_piqa(data, labels, limit) : eval::load_hellaswag(data, limit);
  // The tokenizer first (no weights): the KV cache is sized by the longest item, capped at the model's context.
  ExperimentConfig probe_cfg;
  probe_cfg.model.path = mo.model, probe_cfg.model.format = mo.format;
  auto probe = describe_rank(probe_cfg, LaunchEnv{});
  auto tok = open_tokenizer(mo.tokenizer, *probe->model);
  const int model_ctx = probe->model->desc().max_seq_len;
  std::vector<eval::TokenizedItem> tokenized;
  size_t longest = 2, most_endings = 1;
  for (const eval::McItem& it : items) {
    tokenized.push_back(eval::tokenize_item(it, *tok, model_ctx));
    for (const eval::ScoredSequence& s : tokenized.back().endings) longest = std::max(longest, s.ids.size());
    most_endings = std::max(most_endings, it.endings.size());
  }
  probe.reset();
  auto s = open_single_process(mo, int(most_endings), int(longest), false);
  eval::SequenceScorer scorer(*s, int(most_endings));
  const eval::McResult r = eval::score_multiple_choice(scorer, tokenized, eval_progress);
  const double se = eval::accuracy_stderr(r.acc(), r.items), se_norm = eval::accuracy_stderr(r.acc_norm(), r.items);
  const double tok_per_s = r.seconds > 0 ? double(r.tokens_forwarded) / r.seconds : 0.0;
  if (json) {
    nlohmann::ordered_json j = {
        {"suite", "mc"}, {"task", task}, {"model", mo.model}, {"tokenizer", tok->source()},
        {"weights", s->weights_plugin}, {"data", data}, {"items", r.items}, {"correct", r.correct},
        {"acc", r.acc()}, {"acc_stderr", se}, {"correct_norm", r.correct_norm}, {"acc_norm", r.acc_norm()},
        {"acc_norm_stderr", se_norm}, {"gold_logprob_mean", r.items ? r.gold_logprob_sum / r.items : 0.0},
        {"tokens_forwarded", r.tokens_forwarded}, {"seconds", r.seconds}, {"tokens_per_s", tok_per_s},
        {"predictions", r.predictions}, {"predictions_norm", r.predictions_norm}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s: %d items from %s%s\n", task.c_str(), r.items, data.c_str(),
              limit > 0 ? (" (--limit " + std::to_string(limit) + ")").c_str() : "");
  std::printf("acc %.4f +- %.4f, acc_norm %.4f +- %.4f (standard error sqrt(p(1-p)/n))\n", r.acc(), se,
              r.acc_norm(), se_norm);
  std::printf("model: %s (%s), %lld tokens in %.2f s, %.0f tokens/s\n", mo.model.c_str(), s->weights_plugin.c_str(),
              r.tokens_forwarded, r.seconds, tok_per_s);
  return 0;
}

}  // namespace hpcinfer::cli
