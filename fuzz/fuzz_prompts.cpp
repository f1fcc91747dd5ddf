// Prompts JSONL (inputs.prompts): lines, ids, prompt_ids, broken and huge lines, with on_bad_line skip and stop.
#include <exception>

#include "core/runtime/requests.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = hpcinfer::fuzz::input_file("prompts.jsonl", data, size);
  for (const char* mode : {"skip", "stop"}) {
    try {
      std::vector<std::string> warnings;
      (void)hpcinfer::read_prompts_jsonl(path, mode, &warnings);
    } catch (const std::exception&) {
    }
  }
  return 0;
}
