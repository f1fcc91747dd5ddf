// safetensors files: the 8-byte header length, the JSON header, shapes, dtypes and data offsets, every tensor view.
#include <exception>

#include "core/formats/safetensors.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = hpcinfer::fuzz::input_file("model.safetensors", data, size);
  try {
    hpcinfer::SafetensorsFile f(path);
    for (const auto& t : f.tensors()) {
      if (!t.supported) continue;
      const hpcinfer::TensorView v = f.view(t);
      hpcinfer::fuzz::touch(v.data, t.end - t.begin);
    }
  } catch (const std::exception&) {
  }
  return 0;
}
