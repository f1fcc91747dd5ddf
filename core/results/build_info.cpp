#include "core/results/build_info.hpp"

#include <boost/version.hpp>
#include <gloo/config.h>

#include "hpcinfer/plugin.hpp"

// Defined for this file only by core/CMakeLists.txt (so a new commit recompiles one file); defaults keep the file
// buildable on its own.
#ifndef HPCINFER_GIT_COMMIT
#define HPCINFER_GIT_COMMIT "unknown"
#endif
#ifndef HPCINFER_BUILD_TYPE
#define HPCINFER_BUILD_TYPE "unknown"
#endif
#ifndef HPCINFER_YAML_CPP_VERSION
#define HPCINFER_YAML_CPP_VERSION "unknown"
#endif
#ifndef HPCINFER_SENTENCEPIECE_VERSION
#define HPCINFER_SENTENCEPIECE_VERSION "unknown"
#endif
#ifndef HPCINFER_OPENMPI_VERSION
#define HPCINFER_OPENMPI_VERSION ""
#endif
#ifndef HPCINFER_CUDA_VERSION
#define HPCINFER_CUDA_VERSION ""
#endif

namespace hpcinfer {
namespace {
nlohmann::json or_null(const char* s) { return *s ? nlohmann::json(s) : nlohmann::json(nullptr); }
}  // namespace

nlohmann::json build_info_json() {
  const std::string dot = ".";
  return {{"hpcinfer_version", HPCINFER_VERSION},
          {"plugin_abi", kPluginAbiVersion},
          {"git_commit", HPCINFER_GIT_COMMIT},
          {"build_type", HPCINFER_BUILD_TYPE},
#if defined(__clang__)
          {"compiler", std::string("clang ") + __clang_version__},
#elif defined(__GNUC__)
          {"compiler", std::string("gcc ") + __VERSION__},
#else
          {"compiler", "unknown"},
#endif
          {"cxx_standard", long(__cplusplus)},
          {"libraries",
           {{"gloo", std::to_string(GLOO_VERSION_MAJOR) + dot + std::to_string(GLOO_VERSION_MINOR) + dot +
                         std::to_string(GLOO_VERSION_PATCH)},
            {"openmpi", or_null(HPCINFER_OPENMPI_VERSION)},  // null: the mpi plugin was not built
            {"yaml-cpp", HPCINFER_YAML_CPP_VERSION},
            {"nlohmann_json", std::to_string(NLOHMANN_JSON_VERSION_MAJOR) + dot +
                                  std::to_string(NLOHMANN_JSON_VERSION_MINOR) + dot +
                                  std::to_string(NLOHMANN_JSON_VERSION_PATCH)},
            {"boost", BOOST_LIB_VERSION},
            {"sentencepiece", HPCINFER_SENTENCEPIECE_VERSION},
            {"cuda", or_null(HPCINFER_CUDA_VERSION)}}}};  // null: built without CUDA
}

}  // namespace hpcinfer
