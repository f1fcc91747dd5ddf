// llama2.c checkpoints (.bin): the 28-byte header, the file size it implies, every tensor view.
#include <exception>

#include "core/model/model_source.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = hpcinfer::fuzz::input_file("model.bin", data, size);
  try {
    auto m = hpcinfer::open_model(path, "llama2c");
    hpcinfer::fuzz::touch_tensors(*m);
  } catch (const std::exception&) {
  }
  return 0;
}
