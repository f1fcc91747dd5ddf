// One experiment, as read from YAML (configs/*.yaml) after validation and --set overrides. Pure data.
// Key names are part of the user contract: model.path, plugins.comm, world.tp, ... (see docs/ARCHITECTURE.md).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace hpcinfer {

struct ExperimentConfig {
  std::string source_file;  // the YAML file it came from ("" for defaults)

  struct Model {
    std::string path;                // required
    std::string format = "auto";     // auto | hf | gguf | llama2c
    std::string tokenizer;           // "" = the model's own / beside it
  } model;

  struct Plugins {
    std::string comm = "gloo";
    std::string weights = "auto";    // auto = f32 for f32/f16 sources, bf16 for bf16 sources
    std::string strategy = "pp";
    int weights_group_size = -1;     // int8: input features per scale (0 = per output channel); -1 = plugin default
    std::string weights_cache;       // packed-weight cache directory (core/runtime/packed_cache.hpp); "" = off
  } plugins;

  struct World {
    int tp = 1;
    int pp = 1;
    int dp = 1;                      // serve: data-parallel replicas, each a full tp x pp engine (world = dp*pp*tp)
    std::vector<int> layer_split;    // explicit layers per pipeline stage, empty = balanced
    std::string rendezvous;          // "" = file store in outputs.dir; "file:///dir" or "tcp://host:port"
    int timeout_s = 60;              // every blocking communication call and the rendezvous
    std::string interface;           // gloo: network interface to bind (eth0, ib0); "" = this host name's address
    bool replicate_kv_heads = false; // tp_pp: allow tp > n_kv_heads by replicating KV heads
    bool vocab_parallel = true;      // tp_pp: embedding and output head split by vocabulary rows over the tp ranks
    bool expert_parallel = false;    // tp_pp: the tp ranks split the experts (whole) instead of slicing each
    std::string moe_comm = "allreduce";  // with expert_parallel: allreduce | alltoall
  } world;

  std::string device = "cpu";        // backend: cpu (built in) | cuda (plugin)
  int threads = 0;                   // 0 = all cores of this process's share

  struct Inputs {
    std::string prompts;             // JSONL, one {"prompt": ..., "id": ...} per line
    std::string on_bad_line = "stop";  // stop | skip
    bool chat = false;               // apply the tokenizer's chat template
  } inputs;

  struct Generation {
    int max_new_tokens = 64;
    float temperature = 0.0f;        // 0 = greedy
    float top_p = 1.0f;
    int top_k = 0;                   // 0 = off
    float min_p = 0.0f;
    uint64_t seed = 0;
    std::vector<std::string> stop;   // stop strings
    std::string add_bos = "auto";    // auto (the model files' setting) | true | false
  } generation;

  struct Batching {
    int batch_size = 1;
    int micro_batches = 1;
  } batching;

  struct Outputs {
    std::string dir = "results/run";
    bool keep_logits = false;
    int logprobs = 0;                // top-k logprobs per generated token in completions.jsonl, 0 = off
    std::string baseline;            // results dir of a baseline run: speedup and parallel efficiency in summary.json
    bool fresh = false;              // false: a rerun into the same dir resumes (skips finished prompts); true: starts over
  } outputs;

  struct Serve {                     // hpcinfer serve (OpenAI-compatible HTTP on rank 0)
    std::string host = "127.0.0.1";
    int port = 8000;                 // 0: any free port (printed)
    int max_waiting = 64;            // requests queued beyond the batch's slots; more are answered 429
    float request_timeout_s = 600;   // a request running longer ends with an error (504)
    int max_context = 0;             // tokens per sequence (prompt + completion); 0: the model's, at most 4096
    std::string model_name;          // the id /v1/models lists; "" = the model file or directory name
  } serve;

  std::vector<std::string> plugin_path;  // extra plugin directories, searched first

  // Where each key set by the user came from, for error messages after loading (see core/config/load_config.hpp).
  // key_lines: "world.tp" -> 1-based line in source_file (keys from the file only).
  // key_origins: "world.tp" -> "exp.yaml:4" or "--set world.tp=2" (file keys and --set overrides).
  std::map<std::string, int> key_lines;
  std::map<std::string, std::string> key_origins;
};

}  // namespace hpcinfer
