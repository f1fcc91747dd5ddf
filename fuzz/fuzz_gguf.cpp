// GGUF model files: header, metadata, tensor table, the model description, every tensor view, the embedded vocabulary.
#include <exception>

#include "core/model/model_source.hpp"
#include "core/tokenizer/tokenizer.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = hpcinfer::fuzz::input_file("m.gguf", data, size);
  try {
    auto m = hpcinfer::open_model(path, "gguf");
    hpcinfer::fuzz::touch_tensors(*m);
  } catch (const std::exception&) {
  }
  try {
    auto t = hpcinfer::load_tokenizer(path);
    (void)t->encode("Hello world, 123! <s> \xe2\x96\x81x", true);
  } catch (const std::exception&) {
  }
  return 0;
}
