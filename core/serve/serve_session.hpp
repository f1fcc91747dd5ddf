// hpcinfer serve, one rank: the engine of `run` behind an OpenAI-compatible HTTP API (http_server.hpp).
//
// The job is world.dp replicas of tp x pp ranks (job rank r is rank r % (tp*pp) of replica r / (tp*pp)); each
// replica is its own engine world. Each replica's leader (its rank 0) holds the request book its engine feeds on
// (continuous batching over batching.batch_size slots, serve.max_waiting queued); job rank 0 is the front: it
// listens on serve.host:serve.port and sends each request to the least-loaded replica (replicas.hpp), replica 0
// being its own engine; the other leaders listen on a free port and publish host:port in the job's rendezvous
// store. The server answers /health with 503 until every replica has its weights. SIGTERM or SIGINT: no new
// requests (503), the running and queued ones finish, the pipeline shuts down, exit 0.
// The front writes OUTPUTS_DIR/server.json ({"url", "model", "pid"}) once it listens.
#pragma once

#include "core/config/experiment_config.hpp"
#include "core/rendezvous/launch_env.hpp"

namespace hpcinfer::serve {

// Returns the exit code; throws on runtime failures (main prints them and exits 1).
int serve(const ExperimentConfig& cfg, const LaunchEnv& job);

}  // namespace hpcinfer::serve
