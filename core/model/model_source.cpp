// open_model(): picks the loader for a path. Loaders: hf_source.cpp, gguf_source.cpp, llama2c_source.cpp.
#include "core/model/model_source.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "core/model/gguf_source.hpp"
#include "core/model/hf_source.hpp"
#include "core/model/llama2c_source.hpp"

namespace fs = std::filesystem;

namespace hpcinfer {
namespace {

bool has_gguf_magic(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char m[4] = {};
  return f.read(m, 4) && std::memcmp(m, "GGUF", 4) == 0;
}

std::string detect(const std::string& path) {
  if (fs::is_directory(path)) return "hf";
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".gguf" || has_gguf_magic(path)) return "gguf";
  if (ext == ".bin") return "llama2c";
  throw std::runtime_error(path + ": cannot tell the model format (expected a Hugging Face directory, a .gguf file or "
                           "a llama2.c .bin file; or name it: hf, gguf, llama2c)");
}

}  // namespace

std::unique_ptr<ModelSource> open_model(const std::string& path, const std::string& format) {
  if (!fs::exists(path)) throw std::runtime_error(path + ": no such file or directory");
  if (!fs::is_directory(path) && !fs::is_regular_file(path))  // a FIFO would block the first read forever
    throw std::runtime_error(path + ": not a model file or directory (a FIFO, device or socket)");
  const std::string f = format == "auto" ? detect(path) : format;
  if (f == "hf") return open_hf_model(path);
  if (f == "gguf") return open_gguf_model(path);
  if (f == "llama2c") return open_llama2c_model(path);
  throw std::invalid_argument("model format '" + format + "' is unknown (auto, hf, gguf, llama2c) for " + path);
}

}  // namespace hpcinfer
