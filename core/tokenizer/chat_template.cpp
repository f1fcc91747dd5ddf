#include "core/tokenizer/chat_template.hpp"

#include <stdexcept>

#include "core/tokenizer/tokenizer.hpp"

namespace hpcinfer {

ChatFamily detect_chat_family(const std::string& t) {
  if (t.find("<|start_header_id|>") != std::string::npos) return ChatFamily::llama3;
  if (t.find("<|im_start|>") != std::string::npos) return ChatFamily::chatml;
  return ChatFamily::none;
}

ChatFamily detect_chat_family(const Tokenizer& tok) {
  if (ChatFamily f = detect_chat_family(tok.chat_template()); f != ChatFamily::none) return f;
  if (tok.find_token("<|start_header_id|>")) return ChatFamily::llama3;
  if (tok.find_token("<|im_start|>")) return ChatFamily::chatml;
  return ChatFamily::none;
}

const char* chat_family_name(ChatFamily f) {
  switch (f) {
    case ChatFamily::llama3: return "llama3";
    case ChatFamily::chatml: return "chatml";
    case ChatFamily::none: break;
  }
  return "none";
}

namespace {
std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}
}  // namespace

std::string apply_chat_template(const std::vector<ChatMessage>& messages, ChatFamily family,
                                bool add_generation_prompt) {
  std::string out;
  switch (family) {
    case ChatFamily::llama3:
      for (const auto& m : messages)
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) + "<|eot_id|>";
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      return out;
    case ChatFamily::chatml:
      for (const auto& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      return out;
    case ChatFamily::none: break;
  }
  throw std::invalid_argument("apply_chat_template: no known chat format (the model's chat_template has neither "
                              "<|start_header_id|> nor <|im_start|>)");
}

}  // namespace hpcinfer
