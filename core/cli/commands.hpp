// One function per `hpcinfer` subcommand, each in its own cmd_<name>.cpp. `args` excludes the program and subcommand
// names. Return value is the process exit code: 0 ok, 1 runtime failure, 2 usage or configuration error.
#pragma once

#include <string>
#include <vector>

namespace hpcinfer::cli {

using Args = std::vector<std::string>;

int cmd_run(const Args& args);
int cmd_launch(const Args& args);
int cmd_serve(const Args& args);
int cmd_generate(const Args& args);
int cmd_logits(const Args& args);
int cmd_tokenize(const Args& args);
int cmd_plugins(const Args& args);
int cmd_plan(const Args& args);
int cmd_bench(const Args& args);
int cmd_bench_kernels(const Args& args);
int cmd_bench_stream(const Args& args);
int cmd_bench_comm(const Args& args);
int cmd_agree(const Args& args);
int cmd_eval(const Args& args);
int cmd_compare(const Args& args);
int cmd_sweep(const Args& args);
int cmd_report(const Args& args);
int cmd_make_model(const Args& args);
int cmd_palu(const Args& args);

}  // namespace hpcinfer::cli
