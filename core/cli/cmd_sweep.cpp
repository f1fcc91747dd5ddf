#include <cstdio>

#include "core/cli/commands.hpp"

namespace hpcinfer::cli {

// Not built yet: see the open issues. Says so instead of pretending.
int cmd_sweep(const Args&) {
  std::fprintf(stderr, "hpcinfer sweep: not available in this build yet\n");
  return 1;
}

}  // namespace hpcinfer::cli
