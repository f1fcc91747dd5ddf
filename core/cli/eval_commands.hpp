// The suites of `hpcinfer eval` (cmd_eval.cpp dispatches on the first argument).
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "core/cli/commands.hpp"

namespace hpcinfer::cli {

int cmd_eval_ppl(const Args& args);  // cmd_eval_ppl.cpp: perplexity, strided sliding window
int cmd_eval_mc(const Args& args);   // cmd_eval_mc.cpp: PIQA / HellaSwag by log-likelihood
int cmd_eval_infer(const Args& args);  // cmd_eval_infer.cpp: prefill/decode tokens/s over a grid

// Where the evaluation data is by default: ../shared/data/eval, relative to the working directory.
inline const char* kDefaultEvalDataDir = "../shared/data/eval";

// Progress of a long evaluation on stderr: one line rewritten in place on a terminal, a plain line every 10%
// otherwise (logs). Fits the progress callbacks of core/eval (done, total).
inline void eval_progress(int done, int total) {
  using clock = std::chrono::steady_clock;
  static clock::time_point start;
  static int last_decile = -1;
  if (done <= 1) start = clock::now(), last_decile = -1;
  const double s = std::chrono::duration<double>(clock::now() - start).count();
  const double eta = done > 0 ? s / done * (total - done) : 0;
  if (isatty(2)) {
    std::fprintf(stderr, "\r  %d/%d, %.0f s, ETA %.0f s   %s", done, total, s, eta, done == total ? "\n" : "");
    return;
  }
  const int decile = total > 0 ? done * 10 / total : 10;
  if (decile == last_decile) return;
  last_decile = decile;
  std::fprintf(stderr, "progress: %d/%d, %.1f s, ETA %.0f s\n", done, total, s, eta);
}

}  // namespace hpcinfer::cli
