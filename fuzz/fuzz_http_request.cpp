// The serve request path: an OpenAI completions / chat body (the first input byte picks which) through
// parse_request with stories260K's tokenizer and a 512-token context, as rank 0's HTTP handler calls it.
#include <exception>
#include <filesystem>

#include "core/serve/openai_api.hpp"
#include "core/tokenizer/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::unique_ptr<hpcinfer::Tokenizer> tok = [] {
    const std::filesystem::path p = std::filesystem::path(HPCINFER_SHARED_DATA) / "models/stories260K/tok512.bin";
    return std::filesystem::exists(p) ? hpcinfer::load_llama2c_tokenizer(p.string(), 512) : nullptr;
  }();
  if (!tok || size < 1) return 0;
  hpcinfer::serve::ApiContext ctx;
  ctx.tok = tok.get();
  ctx.model_name = "stories260K";
  ctx.max_ctx = 512;
  ctx.vocab = 512;
  try {
    (void)hpcinfer::serve::parse_request(std::string(reinterpret_cast<const char*>(data) + 1, size - 1), data[0] & 1, ctx);
  } catch (const std::exception&) {  // ApiError derives from std::exception: the 4xx answers
  }
  return 0;
}
