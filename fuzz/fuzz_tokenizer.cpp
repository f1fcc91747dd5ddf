// Vocabulary files: HF tokenizer.json (the first input byte picks the file kind: tokenizer.json, llama2.c
// tokenizer.bin, encoder.json), then an encode / decode round of a fixed text with specials and bytes.
#include <exception>

#include "core/tokenizer/tokenizer.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int kind = data[0] % 3;
  const std::string path = hpcinfer::fuzz::input_file(kind == 0   ? "tokenizer.json"
                                                      : kind == 1 ? "tokenizer.bin"
                                                                  : "encoder.json",
                                                      data + 1, size - 1);
  try {
    auto t = kind == 1 ? hpcinfer::load_llama2c_tokenizer(path) : hpcinfer::load_tokenizer(path);
    const std::vector<int> ids = t->encode("Hello world, 123! <s></s><|endoftext|> \xe2\x96\x81x \xf0\x9f\x98\x80", true);
    (void)t->decode(ids);
  } catch (const std::exception&) {
  }
  return 0;
}
