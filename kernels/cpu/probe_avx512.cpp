// The machine probes' loops compiled for x86-64-v4 (flags set in kernels/CMakeLists.txt).
#include "kernels/cpu/probe_loops.hpp"

hpcinfer::kernels::ProbeLoops hpcinfer::kernels::probe_loops_avx512() { return make_probe_loops(); }
