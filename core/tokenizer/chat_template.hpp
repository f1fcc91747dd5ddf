// Chat prompt formats for instruction-tuned models. Not a Jinja engine: the two families hpcinfer knows are
// written out, and the family is recognized from the model's own template text (or its special tokens).
#pragma once

#include <string>
#include <vector>

namespace hpcinfer {

class Tokenizer;

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

enum class ChatFamily { none, llama3, chatml };

// <|start_header_id|> in the template -> llama3; <|im_start|> -> chatml; otherwise none.
ChatFamily detect_chat_family(const std::string& chat_template);
// From tokenizer.chat_template, else from which of those tokens the vocabulary has.
ChatFamily detect_chat_family(const Tokenizer& tok);
const char* chat_family_name(ChatFamily f);

// The prompt text; BOS is NOT included (encode with add_bos). With add_generation_prompt, ends with the header
// of an assistant turn. Throws std::invalid_argument for ChatFamily::none.
//   llama3: <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|> ... (content trimmed of outer spaces)
//   chatml: <|im_start|>ROLE\nCONTENT<|im_end|>\n ...
std::string apply_chat_template(const std::vector<ChatMessage>& messages, ChatFamily family,
                                bool add_generation_prompt = true);

}  // namespace hpcinfer
