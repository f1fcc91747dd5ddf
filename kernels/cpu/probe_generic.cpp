// The machine probes' loops compiled for the baseline (flags set in kernels/CMakeLists.txt).
#include "kernels/cpu/probe_loops.hpp"

hpcinfer::kernels::ProbeLoops hpcinfer::kernels::probe_loops_generic() { return make_probe_loops(); }
