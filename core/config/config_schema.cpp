#include "core/config/config_schema.hpp"

#include <algorithm>

namespace hpcinfer::config_detail {

namespace {

#define HPCINFER_LEAF(path, member) \
  Leaf { path, [](ExperimentConfig& c) -> FieldRef { return &c.member; } }

// Levenshtein distance, small strings only.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string parent_of(const std::string& path) {
  auto dot = path.rfind('.');
  return dot == std::string::npos ? "" : path.substr(0, dot);
}
std::string last_of(const std::string& path) {
  auto dot = path.rfind('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}
std::string join(const std::string& section, const std::string& key) {
  return section.empty() ? key : section + "." + key;
}

// outputs.logprobs: a bound keeps completions.jsonl lines of a readable size (vocabularies reach 128k entries).
constexpr int kMaxLogprobs = 100;

bool one_of(const std::string& v, std::initializer_list<const char*> allowed) {
  for (const char* a : allowed)
    if (v == a) return true;
  return false;
}

}  // namespace

const std::vector<Leaf>& schema() {
  static const std::vector<Leaf> leaves = {
      HPCINFER_LEAF("model.path", model.path),
      HPCINFER_LEAF("model.format", model.format),
      HPCINFER_LEAF("model.tokenizer", model.tokenizer),
      HPCINFER_LEAF("plugins.comm", plugins.comm),
      HPCINFER_LEAF("plugins.weights", plugins.weights),
      HPCINFER_LEAF("plugins.strategy", plugins.strategy),
      HPCINFER_LEAF("plugins.weights_group_size", plugins.weights_group_size),
      HPCINFER_LEAF("plugins.weights_cache", plugins.weights_cache),
      HPCINFER_LEAF("world.tp", world.tp),
      HPCINFER_LEAF("world.pp", world.pp),
      HPCINFER_LEAF("world.dp", world.dp),
      HPCINFER_LEAF("world.layer_split", world.layer_split),
      HPCINFER_LEAF("world.rendezvous", world.rendezvous),
      HPCINFER_LEAF("world.timeout_s", world.timeout_s),
      HPCINFER_LEAF("world.interface", world.interface),
      HPCINFER_LEAF("world.replicate_kv_heads", world.replicate_kv_heads),
      HPCINFER_LEAF("world.vocab_parallel", world.vocab_parallel),
      HPCINFER_LEAF("world.expert_parallel", world.expert_parallel),
      HPCINFER_LEAF("world.moe_comm", world.moe_comm),
      HPCINFER_LEAF("device", device),
      HPCINFER_LEAF("threads", threads),
      HPCINFER_LEAF("inputs.prompts", inputs.prompts),
      HPCINFER_LEAF("inputs.on_bad_line", inputs.on_bad_line),
      HPCINFER_LEAF("inputs.chat", inputs.chat),
      HPCINFER_LEAF("generation.max_new_tokens", generation.max_new_tokens),
      HPCINFER_LEAF("generation.temperature", generation.temperature),
      HPCINFER_LEAF("generation.top_p", generation.top_p),
      HPCINFER_LEAF("generation.top_k", generation.top_k),
      HPCINFER_LEAF("generation.min_p", generation.min_p),
      HPCINFER_LEAF("generation.seed", generation.seed),
      HPCINFER_LEAF("generation.stop", generation.stop),
      HPCINFER_LEAF("generation.add_bos", generation.add_bos),
      HPCINFER_LEAF("batching.batch_size", batching.batch_size),
      HPCINFER_LEAF("batching.micro_batches", batching.micro_batches),
      HPCINFER_LEAF("outputs.dir", outputs.dir),
      HPCINFER_LEAF("outputs.keep_logits", outputs.keep_logits),
      HPCINFER_LEAF("outputs.logprobs", outputs.logprobs),
      HPCINFER_LEAF("outputs.baseline", outputs.baseline),
      HPCINFER_LEAF("outputs.fresh", outputs.fresh),
      HPCINFER_LEAF("serve.host", serve.host),
      HPCINFER_LEAF("serve.port", serve.port),
      HPCINFER_LEAF("serve.max_waiting", serve.max_waiting),
      HPCINFER_LEAF("serve.request_timeout_s", serve.request_timeout_s),
      HPCINFER_LEAF("serve.max_context", serve.max_context),
      HPCINFER_LEAF("serve.model_name", serve.model_name),
      Leaf{"plugin_path", [](ExperimentConfig& c) -> FieldRef { return &c.plugin_path; }, true},
  };
  return leaves;
}

const Leaf* find_leaf(const std::string& path) {
  for (const auto& l : schema())
    if (path == l.path) return &l;
  return nullptr;
}

bool is_section(const std::string& path) {
  if (path.empty()) return true;
  for (const auto& l : schema())
    if (std::string(l.path).rfind(path + ".", 0) == 0) return true;
  return false;
}

std::vector<std::string> children(const std::string& section) {
  std::vector<std::string> out;
  std::string prefix = section.empty() ? "" : section + ".";
  for (const auto& l : schema()) {
    std::string p = l.path;
    if (p.rfind(prefix, 0) != 0) continue;
    std::string rest = p.substr(prefix.size());
    std::string name = rest.substr(0, rest.find('.'));
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  }
  return out;
}

std::string suggest(const std::string& path) {
  const std::string section = parent_of(path), key = last_of(path);
  std::string best;
  size_t best_d = std::max<size_t>(1, key.size() / 3) + 1;  // accept distance <= max(1, len/3)
  for (const auto& sib : children(section)) {
    size_t d = edit_distance(key, sib);
    if (d < best_d) best_d = d, best = join(section, sib);
  }
  if (!best.empty()) return best;
  for (const auto& l : schema())  // right key, wrong section
    if (last_of(l.path) == key || edit_distance(last_of(l.path), key) <= (key.size() >= 6 ? 1u : 0u)) return l.path;
  return "";
}

std::string check_range(const std::string& path, const ExperimentConfig& c) {
  auto at_least = [](const char* what, long v, long min) -> std::string {
    return v >= min ? "" : std::string("must be >= ") + std::to_string(min) + ", got " + std::to_string(v) + what;
  };
  if (path == "model.format" && !one_of(c.model.format, {"auto", "hf", "gguf", "llama2c"}))
    return "must be one of auto, hf, gguf, llama2c; got '" + c.model.format + "'";
  if (path == "model.path" && c.model.path.empty()) return "must not be empty";
  if (path == "plugins.comm" && c.plugins.comm.empty()) return "must name a comm plugin (e.g. gloo)";
  if (path == "plugins.weights" && c.plugins.weights.empty()) return "must name a weights plugin or 'auto'";
  if (path == "plugins.strategy" && c.plugins.strategy.empty()) return "must name a strategy plugin (e.g. pp)";
  if (path == "world.tp") return at_least("", c.world.tp, 1);
  if (path == "world.pp") return at_least("", c.world.pp, 1);
  if (path == "world.dp") return at_least("", c.world.dp, 1);
  if (path == "serve.port" && (c.serve.port < 0 || c.serve.port > 65535))
    return "must be in [0, 65535] (0 = any free port), got " + std::to_string(c.serve.port);
  if (path == "serve.max_waiting") return at_least("", c.serve.max_waiting, 0);
  if (path == "serve.request_timeout_s" && !(c.serve.request_timeout_s > 0))
    return "must be > 0 seconds, got " + std::to_string(c.serve.request_timeout_s);
  if (path == "serve.max_context") return at_least(" (0 = the model's)", c.serve.max_context, 0);
  if (path == "world.layer_split") {
    for (int v : c.world.layer_split)
      if (v < 1) return "every stage needs >= 1 layer, got " + std::to_string(v);
    if (!c.world.layer_split.empty() && int(c.world.layer_split.size()) != c.world.pp)
      return "has " + std::to_string(c.world.layer_split.size()) + " entries but world.pp = " +
             std::to_string(c.world.pp) + " (one entry per pipeline stage)";
  }
  if (path == "world.timeout_s") return at_least("", c.world.timeout_s, 1);
  if (path == "device" && !one_of(c.device, {"cpu", "cuda"})) return "must be cpu or cuda; got '" + c.device + "'";
  if (path == "threads") return at_least(" (0 = all cores)", c.threads, 0);
  if (path == "world.moe_comm" && !one_of(c.world.moe_comm, {"allreduce", "alltoall"}))
    return "must be allreduce or alltoall; got '" + c.world.moe_comm + "'";
  if (path == "generation.add_bos" && !one_of(c.generation.add_bos, {"auto", "true", "false"}))
    return "must be auto, true or false; got '" + c.generation.add_bos + "'";
  if (path == "inputs.on_bad_line" && !one_of(c.inputs.on_bad_line, {"stop", "skip"}))
    return "must be stop or skip; got '" + c.inputs.on_bad_line + "'";
  if (path == "generation.max_new_tokens") return at_least("", c.generation.max_new_tokens, 0);
  if (path == "generation.temperature" && !(c.generation.temperature >= 0.0f))
    return "must be >= 0 (0 = greedy), got " + std::to_string(c.generation.temperature);
  if (path == "generation.top_p" && !(c.generation.top_p > 0.0f && c.generation.top_p <= 1.0f))
    return "must be in (0, 1], got " + std::to_string(c.generation.top_p);
  if (path == "generation.top_k") return at_least(" (0 = off)", c.generation.top_k, 0);
  if (path == "generation.min_p" && !(c.generation.min_p >= 0.0f && c.generation.min_p < 1.0f))
    return "must be in [0, 1), got " + std::to_string(c.generation.min_p);
  if (path == "batching.batch_size") return at_least("", c.batching.batch_size, 1);
  if (path == "batching.micro_batches") {
    if (c.batching.micro_batches < 1) return at_least("", c.batching.micro_batches, 1);
    if (c.batching.micro_batches > c.batching.batch_size)
      return "must be <= batching.batch_size (" + std::to_string(c.batching.batch_size) + "), got " +
             std::to_string(c.batching.micro_batches);
  }
  if (path == "outputs.dir" && c.outputs.dir.empty()) return "must not be empty";
  if (path == "outputs.logprobs" && (c.outputs.logprobs < 0 || c.outputs.logprobs > kMaxLogprobs))
    return "must be in [0, " + std::to_string(kMaxLogprobs) + "] (top-k logprobs per token, 0 = off), got " +
           std::to_string(c.outputs.logprobs);
  return "";
}

}  // namespace hpcinfer::config_detail
