// hpcinfer run CONFIG [--set k=v]...: one rank of an experiment; the world comes from the launcher's environment.
#include "core/cli/cli_util.hpp"
#include "core/config/config_error.hpp"
#include "core/config/load_config.hpp"
#include "core/plugin/plugin_registry.hpp"
#include "core/runtime/run_experiment.hpp"

namespace hpcinfer::cli {

int cmd_run(const Args& args) {
  CLI::App app{"Run one rank of an experiment (world size from srun / mpirun / hpcinfer launch, else 1)", "hpcinfer run"};
  std::string config;
  std::vector<std::string> sets;
  app.add_option("config", config, "experiment YAML")->required();
  app.add_option("--set", sets, "override a key: key.path=value (repeatable)");
  bool fresh = false;
  app.add_flag("--fresh", fresh, "start over in outputs.dir (default: resume, skipping prompts already completed)");
  if (auto rc = parse_args(app, args)) return *rc;
  if (fresh) sets.push_back("outputs.fresh=true");
  ExperimentConfig cfg;
  LaunchEnv env;
  if (auto rc = load_rank_config(config, sets, "hpcinfer run", cfg, env, [](const ExperimentConfig& c) {
        if (c.world.dp > 1)
          throw ConfigError(config_message(c, "world.dp", "data-parallel replicas are for `hpcinfer serve`; run uses "
                                                          "one engine (world.dp: 1)"));
      }))
    return *rc;
  return run_experiment(cfg, env);
}

}  // namespace hpcinfer::cli
