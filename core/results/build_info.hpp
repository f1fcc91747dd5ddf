// What this binary was built from, for env.json: hpcinfer version, git commit, compiler, and the versions of the
// libraries it was compiled against (as built, read at configure or compile time: a shared library upgraded later
// is not noticed). The git commit is the checkout's HEAD when CMake configured the build ("unknown" outside a git
// checkout); a commit made after configuring shows up after the next configure.
#pragma once

#include <nlohmann/json.hpp>

namespace hpcinfer {

nlohmann::json build_info_json();

}  // namespace hpcinfer
