// The wait policy launch gives ranks that share cores (core/runtime/shared_cores_env.hpp): a short spin by default,
// and a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT left exactly as it is.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "core/runtime/shared_cores_env.hpp"

namespace hpcinfer {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "(unset)";
}

TEST(SharedCoresEnv, DefaultIsAShortSpinThenSleep) {
  unsetenv("OMP_WAIT_POLICY");
  unsetenv("GOMP_SPINCOUNT");
  set_shared_cores_wait_policy();
  EXPECT_EQ(env("GOMP_SPINCOUNT"), "2000");
  EXPECT_EQ(env("OMP_WAIT_POLICY"), "passive");
}

TEST(SharedCoresEnv, TheUsersChoiceIsKept) {
  unsetenv("GOMP_SPINCOUNT");
  setenv("OMP_WAIT_POLICY", "active", 1);
  set_shared_cores_wait_policy();
  EXPECT_EQ(env("OMP_WAIT_POLICY"), "active");
  EXPECT_EQ(env("GOMP_SPINCOUNT"), "(unset)");
  unsetenv("OMP_WAIT_POLICY");
  setenv("GOMP_SPINCOUNT", "5", 1);
  set_shared_cores_wait_policy();
  EXPECT_EQ(env("GOMP_SPINCOUNT"), "5");
  EXPECT_EQ(env("OMP_WAIT_POLICY"), "(unset)");
  unsetenv("GOMP_SPINCOUNT");
}

}  // namespace
}  // namespace hpcinfer
