// model.safetensors.index.json of a sharded Hugging Face checkpoint: weight_map entries (names, file paths: none may
// lead outside the model directory), over a small valid directory made once per process.
#include <exception>
#include <filesystem>

#include "core/model/model_source.hpp"
#include "fuzz_input.hpp"
#include "test_formats_helpers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    const auto d = hpcinfer::fuzz::scratch_dir() / "hf";
    std::filesystem::create_directories(d);
    hpcinfer::test::write_hf_dir(d.string(), hpcinfer::test::tiny_desc(), hpcinfer::test::tiny_desc());
    return d.string();
  }();
  hpcinfer::fuzz::input_file("hf/model.safetensors.index.json", data, size);
  try {
    auto m = hpcinfer::open_model(dir, "hf");
    hpcinfer::fuzz::touch_tensors(*m);
  } catch (const std::exception&) {
  }
  return 0;
}
