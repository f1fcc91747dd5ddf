// A world-of-one session for the direct commands (generate, logits): the same plugin path a distributed run takes.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "core/config/load_config.hpp"
#include "core/runtime/rank_session.hpp"
#include "kernels/cpu/ops.hpp"

namespace hpcinfer::cli {

struct ModelOptions {
  std::string model, format = "auto", tokenizer, weights = "auto", device = "cpu";
  int threads = 0;
  int group_size = -1;
  std::string weights_cache;
  void add_to(CLI::App& app) {
    app.add_option("--model", model, "model: HF directory, .gguf or llama2.c .bin")->required();
    app.add_option("--format", format, "auto | hf | gguf | llama2c");
    app.add_option("--tokenizer", tokenizer, "tokenizer file (default: the model's own / beside it)");
    app.add_option("--weights", weights, "weights plugin: auto | f32 | bf16 | ...");
    app.add_option("--threads", threads, "threads (0 = all cores)");
    app.add_option("--device", device, "backend: cpu | cuda (a backend plugin's name)");
    app.add_option("--group-size", group_size, "int8 weights: input features per scale, 0 = per channel (default 32)");
    app.add_option("--weights-cache", weights_cache, "packed-weight cache directory: the first load writes, later ones map");
  }
  // "" or "--threads: <why>": the flags obey their YAML keys' ranges (one rule: core/config/config_schema.cpp).
  std::string range_error() const {
    ExperimentConfig c;
    c.threads = threads;
    const std::string why = config_range_error(c, "threads");
    return why.empty() ? "" : "--threads: " + why;
  }
};

// Plans world 1 with strategy pp and packs every weight: n_slots sequences of max_ctx tokens.
inline std::unique_ptr<RankSession> open_single_process(const ModelOptions& o, int n_slots, int max_ctx,
                                                        bool with_tokenizer) {
  ExperimentConfig cfg;
  cfg.model.path = o.model;
  cfg.model.format = o.format;
  cfg.model.tokenizer = o.tokenizer;
  cfg.plugins.weights = o.weights;
  cfg.threads = o.threads;
  cfg.device = o.device;
  cfg.plugins.weights_group_size = o.group_size;
  cfg.plugins.weights_cache = o.weights_cache;
  LaunchEnv env;
  auto s = describe_rank(cfg, env);
  if (with_tokenizer) s->tokenizer = open_tokenizer(o.tokenizer, *s->model);
  open_rank(*s, n_slots, max_ctx);
  return s;
}

// One forward pass of a world-of-one session: ids b.tokens[i] go to slot b.slot[i] at b.pos[i].
// Returns logits[rows.size(), vocab] of the batch rows listed in `rows`.
inline std::vector<float> forward_logits(RankSession& s, const TokenBatch& b, const std::vector<int>& rows) {
  const int64_t V = s.model->desc().vocab;
  std::vector<float> logits(rows.size() * static_cast<size_t>(V));
  s.stage->embed(b);
  s.stage->forward_layers(b);
  s.stage->head(rows, logits.data());
  return logits;
}

// The same pass; the greedy next id of each listed row.
inline std::vector<int> greedy_step(RankSession& s, const TokenBatch& b, const std::vector<int>& rows) {
  const int64_t V = s.model->desc().vocab;
  const std::vector<float> logits = forward_logits(s, b, rows);
  std::vector<int> next;
  for (size_t r = 0; r < rows.size(); ++r) next.push_back(int(kernels::argmax(logits.data() + r * size_t(V), V)));
  return next;
}

}  // namespace hpcinfer::cli
