// ConfigError: a user's experiment configuration is wrong. what() names where: "FILE:LINE: key.path: message" for
// keys from a YAML file, "--set key.path=value: message" for command-line overrides. `hpcinfer` exits 2 on it.
#pragma once

#include <stdexcept>
#include <string>

namespace hpcinfer {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace hpcinfer
