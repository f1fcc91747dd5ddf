// hpcinfer serve CONFIG [--host H] [--port P] [--set k=v]...: one rank of a server job (core/serve/serve_session.hpp).
#include "core/cli/cli_util.hpp"
#include "core/config/config_error.hpp"
#include "core/config/load_config.hpp"
#include "core/plugin/plugin_registry.hpp"
#include "core/serve/serve_session.hpp"

namespace hpcinfer::cli {

int cmd_serve(const Args& args) {
  CLI::App app{"Serve a model over an OpenAI-compatible HTTP API (rank 0 listens; world from srun / mpirun / "
               "hpcinfer launch --serve, else 1)",
               "hpcinfer serve"};
  std::string config, host;
  int port = -1;
  std::vector<std::string> sets;
  app.add_option("config", config, "experiment YAML")->required();
  app.add_option("--host", host, "address to listen on (serve.host; default 127.0.0.1)");
  app.add_option("--port", port, "port (serve.port; default 8000, 0 = any free port)");
  app.add_option("--set", sets, "override a key: key.path=value (repeatable)");
  if (auto rc = parse_args(app, args)) return *rc;
  if (!host.empty()) sets.push_back("serve.host=" + host);
  if (port >= 0) sets.push_back("serve.port=" + std::to_string(port));
  ExperimentConfig cfg;
  LaunchEnv env;
  if (auto rc = load_rank_config(config, sets, "hpcinfer serve", cfg, env, [](const ExperimentConfig&) {})) return *rc;
  return serve::serve(cfg, env);
}

}  // namespace hpcinfer::cli
