// The one way a prompt becomes token ids (run, launch, generate, agree; eval suites for their texts):
//   - BOS: the model files' own setting (the tokenizer's add_bos: GGUF tokenizer.ggml.add_bos_token, HF
//     tokenizer_config add_bos_token, ...) unless the configuration says "true" or "false" (generation.add_bos);
//   - special tokens: the text of control / user-defined tokens ("<|im_start|>", "<|eot_id|>") becomes those tokens
//     in prompts (as llama.cpp's CLI and server do); corpus text for evaluation (perplexity, multiple choice) is
//     text only (PromptOptions::corpus), as llama.cpp's perplexity and HellaSwag tools read it;
//   - chat: the tokenizer's chat template around the prompt (a user turn and the assistant's start) first;
//   - an empty result becomes [BOS] (or [0] without one): a forward pass needs a token.
#pragma once

#include <string>
#include <vector>

#include "core/tokenizer/chat_template.hpp"
#include "core/tokenizer/tokenizer.hpp"

namespace hpcinfer {

struct PromptOptions {
  std::string add_bos = "auto";  // auto | true | false
  bool chat = false;
  bool corpus = false;           // evaluation text: special-token text stays text
};

// Throws std::invalid_argument for an add_bos other than auto, true, false.
std::vector<int> prompt_ids(const Tokenizer& tok, const std::string& text, const PromptOptions& opt);
// A whole conversation (serve's chat completions): the chat template around every message and the assistant's
// start, then as above. Throws std::invalid_argument when the tokenizer has no chat template hpcinfer knows.
std::vector<int> chat_prompt_ids(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                                 const std::string& add_bos);

}  // namespace hpcinfer
