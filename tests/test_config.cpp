// Experiment configuration: loading, validation errors (FILE:LINE: key: message), --set overrides, world checks,
// and the resolved-config dump.
#include <gtest/gtest.h>

#include "core/config/load_config.hpp"
#include "support/test_support.hpp"

using hpcinfer::ConfigError;
using hpcinfer::ExperimentConfig;
using hpcinfer::load_config;
using hpcinfer::load_config_text;

namespace {

// The message of the ConfigError thrown by `fn`, or a failure when none is thrown.
template <class F>
std::string config_error_of(F&& fn) {
  try {
    fn();
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigError thrown";
  return "";
}

const char* kGood = R"(# a complete experiment
model:
  path: models/tiny
  format: gguf
plugins: {comm: mpi, weights: bf16, strategy: tp_pp}
world:
  tp: 2
  pp: 2
  layer_split: [3, 5]
  timeout_s: 30
device: cpu
threads: 2
inputs:
  prompts: prompts.jsonl
  on_bad_line: skip
  chat: yes
generation:
  max_new_tokens: 16
  temperature: 0.7
  top_p: 0.9
  top_k: 40
  seed: 18446744073709551615
  stop: ["\n\n", "User:"]
  add_bos: false
batching: {batch_size: 8, micro_batches: 4}
outputs: {dir: results/x, keep_logits: true, logprobs: 5}
plugin_path: /opt/plugins
)";

}  // namespace

TEST(Config, LoadsEveryKeyFromAFile) {
  hpcinfer::test::ScratchDir dir;
  dir.write("exp.yaml", kGood);
  ExperimentConfig c = load_config((dir / "exp.yaml").string(), {});
  EXPECT_EQ(c.model.path, "models/tiny");
  EXPECT_EQ(c.model.format, "gguf");
  EXPECT_EQ(c.plugins.comm, "mpi");
  EXPECT_EQ(c.plugins.strategy, "tp_pp");
  EXPECT_EQ(c.world.tp, 2);
  EXPECT_EQ(c.world.layer_split, (std::vector<int>{3, 5}));
  EXPECT_EQ(c.world.timeout_s, 30);
  EXPECT_EQ(c.threads, 2);
  EXPECT_EQ(c.inputs.on_bad_line, "skip");
  EXPECT_TRUE(c.inputs.chat);
  EXPECT_FLOAT_EQ(c.generation.temperature, 0.7f);
  EXPECT_EQ(c.generation.top_k, 40);
  EXPECT_EQ(c.generation.seed, 18446744073709551615ull);
  EXPECT_EQ(c.generation.stop, (std::vector<std::string>{"\n\n", "User:"}));
  EXPECT_EQ(c.generation.add_bos, "false");
  EXPECT_EQ(c.batching.micro_batches, 4);
  EXPECT_TRUE(c.outputs.keep_logits);
  EXPECT_EQ(c.outputs.logprobs, 5);
  EXPECT_EQ(c.plugin_path, (std::vector<std::string>{"/opt/plugins"}));  // one string is a one-entry list
  EXPECT_EQ(c.key_lines.at("world.tp"), 7);
  EXPECT_EQ(c.key_lines.at("plugins.weights"), 5);
  EXPECT_EQ(c.key_origins.at("world.pp"), (dir / "exp.yaml").string() + ":8");
}

TEST(Config, DefaultsFillWhatIsNotGiven) {
  ExperimentConfig c = load_config_text("model: {path: m.gguf}\n", "exp.yaml");
  EXPECT_EQ(c.model.format, "auto");
  EXPECT_EQ(c.plugins.comm, "gloo");
  EXPECT_EQ(c.world.tp, 1);
  EXPECT_EQ(c.batching.batch_size, 1);
  EXPECT_EQ(c.outputs.dir, "results/run");
  EXPECT_TRUE(c.plugin_path.empty());
}

TEST(Config, UnknownTopLevelKeyNamesLineAndKnownKeys) {
  std::string msg = config_error_of([] { load_config_text("model: {path: m}\n\nbogus_key: 3\n", "exp.yaml"); });
  EXPECT_NE(msg.find("exp.yaml:3: bogus_key: unknown key"), std::string::npos) << msg;
  EXPECT_NE(msg.find("known keys here: model, plugins, world"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("did you mean"), std::string::npos) << msg;
}

TEST(Config, NearMissKeySuggestsTheRightOne) {
  std::string msg = config_error_of(
      [] { load_config_text("model: {path: m}\ngeneration:\n  max_new_tokens: 3\n  temprature: 0.5\n", "e.yaml"); });
  EXPECT_NE(msg.find("e.yaml:4: generation.temprature: unknown key, did you mean 'generation.temperature'?"),
            std::string::npos)
      << msg;
  // The right key in the wrong section.
  msg = config_error_of([] { load_config_text("model: {path: m}\ntp: 2\n", "e.yaml"); });
  EXPECT_NE(msg.find("e.yaml:2: tp: unknown key, did you mean 'world.tp'?"), std::string::npos) << msg;
}

TEST(Config, WrongTypeNamesKeyLineAndValue) {
  std::string msg = config_error_of([] { load_config_text("model:\n  path: m\nworld:\n  tp: two\n", "exp.yaml"); });
  EXPECT_NE(msg.find("exp.yaml:4: world.tp: expected an integer, got 'two'"), std::string::npos) << msg;
  msg = config_error_of([] { load_config_text("model: {path: m}\nworld:\n  tp: \"2\"\n", "exp.yaml"); });
  EXPECT_NE(msg.find("exp.yaml:3: world.tp: expected an integer, got the quoted string \"2\""), std::string::npos)
      << msg;
  msg = config_error_of([] { load_config_text("model: {path: m}\nworld: {layer_split: [2, x]}\n", "exp.yaml"); });
  EXPECT_NE(msg.find("exp.yaml:2: world.layer_split: expected a list of integers"), std::string::npos) << msg;
  msg = config_error_of([] { load_config_text("model: {path: [a, b]}\n", "exp.yaml"); });
  EXPECT_NE(msg.find("exp.yaml:1: model.path: expected a string, got a list"), std::string::npos) << msg;
  msg = config_error_of([] { load_config_text("model: m.gguf\n", "exp.yaml"); });
  EXPECT_NE(msg.find("exp.yaml:1: model: this section must be a mapping"), std::string::npos) << msg;
  msg = config_error_of([] { load_config_text("model: {path: m}\ngeneration: {seed: -1}\n", "exp.yaml"); });
  EXPECT_NE(msg.find("exp.yaml:2: generation.seed: expected an unsigned integer"), std::string::npos) << msg;
}

TEST(Config, MissingModelPath) {
  std::string msg =
      config_error_of([] { load_config_text("world:\n  tp: 1\nmodel:\n  format: gguf\n", "exp.yaml"); });
  EXPECT_NE(msg.find("exp.yaml:3: model.path: required key is missing"), std::string::npos) << msg;
  msg = config_error_of([] { load_config_text("", "empty.yaml"); });
  EXPECT_NE(msg.find("empty.yaml:1: model.path: required key is missing"), std::string::npos) << msg;
}

TEST(Config, ValuesOutOfRange) {
  struct Case {
    const char* yaml;
    const char* expect;
  } cases[] = {
      {"world: {tp: 0}", "exp.yaml:2: world.tp: must be >= 1, got 0"},
      {"world: {pp: -2}", "exp.yaml:2: world.pp: must be >= 1, got -2"},
      {"generation: {temperature: -0.5}", "exp.yaml:2: generation.temperature: must be >= 0"},
      {"generation: {top_p: 0}", "exp.yaml:2: generation.top_p: must be in (0, 1]"},
      {"generation: {top_p: 1.5}", "exp.yaml:2: generation.top_p: must be in (0, 1]"},
      {"device: gpu", "exp.yaml:2: device: must be cpu or cuda; got 'gpu'"},
      {"batching: {batch_size: 0}", "exp.yaml:2: batching.batch_size: must be >= 1, got 0"},
      {"outputs: {logprobs: -1}", "exp.yaml:2: outputs.logprobs: must be in [0, 100]"},
      {"outputs: {logprobs: 101}", "exp.yaml:2: outputs.logprobs: must be in [0, 100]"},
      {"batching: {batch_size: 2, micro_batches: 3}", "exp.yaml:2: batching.micro_batches: must be <= batching."},
      {"world: {pp: 2, layer_split: [4]}", "exp.yaml:2: world.layer_split: has 1 entries but world.pp = 2"},
  };
  for (const auto& c : cases) {
    std::string msg = config_error_of([&] { load_config_text(std::string("model: {path: m}\n") + c.yaml, "exp.yaml"); });
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.yaml << " -> " << msg;
  }
  std::string msg = config_error_of([] { load_config_text("model: {path: m, format: safetensors}\n", "exp.yaml"); });
  EXPECT_NE(msg.find("exp.yaml:1: model.format: must be one of auto, hf, gguf, llama2c"), std::string::npos) << msg;
}

TEST(Config, MalformedYamlGivesFileAndLine) {
  hpcinfer::test::ScratchDir dir;
  dir.write("bad.yaml", "model:\n  path: m\nworld:\n  layer_split: [2, 3\n  tp: 2\n");
  std::string file = (dir / "bad.yaml").string();
  std::string msg = config_error_of([&] { load_config(file, {}); });
  EXPECT_NE(msg.find(file + ":"), std::string::npos) << msg;
  EXPECT_NE(msg.find("malformed YAML"), std::string::npos) << msg;
  // yaml-cpp reports the unclosed flow sequence at or after the line where it opened.
  int line = std::stoi(msg.substr(file.size() + 1));
  EXPECT_GE(line, 4) << msg;
  EXPECT_LE(line, 6) << msg;
}

TEST(Config, MissingFileIsNamed) {
  std::string msg = config_error_of([] { load_config("/nonexistent/exp.yaml", {}); });
  EXPECT_NE(msg.find("/nonexistent/exp.yaml: cannot open"), std::string::npos) << msg;
}

TEST(Config, DuplicateKeyIsAnError) {
  std::string msg = config_error_of([] { load_config_text("model: {path: m}\nworld:\n  tp: 2\n  tp: 4\n", "e.yaml"); });
  EXPECT_NE(msg.find("e.yaml:4: world.tp: duplicate key (first set at line 3)"), std::string::npos) << msg;
}

TEST(Config, SetOverridesAreAppliedInOrder) {
  ExperimentConfig c = load_config_text(
      "model: {path: m}\nworld: {tp: 4}\n", "exp.yaml",
      {"world.tp=2", "world.pp=2", "world.layer_split=[2,3]", "generation.stop=[\"###\"]", "model.tokenizer=",
       "world.rendezvous=tcp://node1:29500", "generation={temperature: 0.5, top_k: 3}", "plugin_path=/a"});
  EXPECT_EQ(c.world.tp, 2);
  EXPECT_EQ(c.world.pp, 2);
  EXPECT_EQ(c.world.layer_split, (std::vector<int>{2, 3}));
  EXPECT_EQ(c.generation.stop, (std::vector<std::string>{"###"}));
  EXPECT_EQ(c.model.tokenizer, "");
  EXPECT_EQ(c.world.rendezvous, "tcp://node1:29500");
  EXPECT_FLOAT_EQ(c.generation.temperature, 0.5f);
  EXPECT_EQ(c.generation.top_k, 3);
  EXPECT_EQ(c.plugin_path, (std::vector<std::string>{"/a"}));
  EXPECT_EQ(c.key_origins.at("world.tp"), "--set world.tp=2");
  EXPECT_EQ(c.key_lines.count("world.tp"), 0u);
  // model.path may come from --set alone.
  EXPECT_EQ(load_config_text("world: {tp: 1}\n", "exp.yaml", {"model.path=x.gguf"}).model.path, "x.gguf");
}

TEST(Config, BadSetOverridesNameTheArgument) {
  struct Case {
    const char* arg;
    const char* expect;
  } cases[] = {
      {"world.tp=two", "--set world.tp=two: expected an integer, got 'two'"},
      {"world.tp=0", "--set world.tp=0: must be >= 1, got 0"},
      {"world.tpp=2", "--set world.tpp=2: unknown key, did you mean 'world.tp'?"},
      {"world.layer_split=[2,", "--set world.layer_split=[2,: value is not valid YAML"},
      {"world.tp", "--set world.tp: expected key.path=value"},
      {"generation.top_p=2", "--set generation.top_p=2: must be in (0, 1]"},
  };
  for (const auto& c : cases) {
    std::string msg = config_error_of([&] { load_config_text("model: {path: m}\n", "exp.yaml", {c.arg}); });
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.arg << " -> " << msg;
  }
}

TEST(Config, CheckWorldNamesTheLineOfWorldTp) {
  ExperimentConfig c = load_config_text("model: {path: m}\nworld:\n  tp: 2\n  pp: 2\n", "exp.yaml");
  EXPECT_NO_THROW(hpcinfer::check_world(c, 4, "SLURM_NTASKS"));
  std::string msg = config_error_of([&] { hpcinfer::check_world(c, 2, "SLURM_NTASKS"); });
  EXPECT_NE(msg.find("exp.yaml:3: world.tp: world.tp*world.pp = 2*2 = 4 but 2 ranks were launched (from SLURM_NTASKS)"),
            std::string::npos)
      << msg;
  ExperimentConfig o = load_config_text("model: {path: m}\n", "exp.yaml", {"world.tp=3"});
  msg = config_error_of([&] { hpcinfer::check_world(o, 1, "launch -n"); });
  EXPECT_NE(msg.find("--set world.tp=3: world.tp*world.pp = 3*1 = 3 but 1 rank was launched (from launch -n)"),
            std::string::npos)
      << msg;
}

TEST(Config, DumpReadsBackToTheSameConfig) {
  ExperimentConfig a = load_config_text(kGood, "exp.yaml", {"generation.temperature=0.3"});
  std::string yaml = hpcinfer::dump_config_yaml(a);
  for (const auto& key : hpcinfer::config_keys()) {
    std::string last = key.substr(key.rfind('.') == std::string::npos ? 0 : key.rfind('.') + 1);
    EXPECT_NE(yaml.find(last + ":"), std::string::npos) << "dump lacks " << key << "\n" << yaml;
  }
  EXPECT_NE(yaml.find("temperature: 0.3\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("--set generation.temperature=0.3"), std::string::npos) << yaml;
  ExperimentConfig b = load_config_text(yaml, "dump.yaml");
  EXPECT_EQ(b.model.path, a.model.path);
  EXPECT_EQ(b.world.layer_split, a.world.layer_split);
  EXPECT_EQ(b.generation.stop, a.generation.stop);
  EXPECT_EQ(b.generation.seed, a.generation.seed);
  EXPECT_EQ(b.generation.temperature, a.generation.temperature);
  EXPECT_EQ(b.generation.add_bos, a.generation.add_bos);
  EXPECT_EQ(b.plugin_path, a.plugin_path);
  EXPECT_EQ(b.inputs.chat, a.inputs.chat);
  std::string again = hpcinfer::dump_config_yaml(b);
  EXPECT_EQ(again.substr(again.find("model:")), yaml.substr(yaml.find("model:")));
}

// yaml-cpp reports its recursion limit as "bad file"; the message must say what is wrong (issue 18).
TEST(Config, DeepNestingIsNamedNotABadFile) {
  const std::string yaml = "model:\n  path: " + std::string(3000, '[') + std::string(3000, ']') + "\n";
  try {
    load_config_text(yaml, "deep.yaml");
    FAIL() << "3000 levels of nesting were accepted";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("deep.yaml:2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("levels deep"), std::string::npos) << msg;
  }
}
