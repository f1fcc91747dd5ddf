#include "core/tokenizer/prompt_ids.hpp"

#include <stdexcept>

#include "core/tokenizer/chat_template.hpp"

namespace hpcinfer {

namespace {
bool wants_bos(const Tokenizer& tok, const std::string& add_bos) {
  bool bos = false;
  if (add_bos == "auto") bos = tok.add_bos();
  else if (add_bos == "true") bos = true;
  else if (add_bos != "false") throw std::invalid_argument("add_bos must be auto, true or false, got '" + add_bos + "'");
  return bos && tok.bos_id() >= 0;
}
std::vector<int> never_empty(std::vector<int> ids, const Tokenizer& tok) {
  if (ids.empty()) ids.push_back(tok.bos_id() >= 0 ? tok.bos_id() : 0);
  return ids;
}
}  // namespace

std::vector<int> prompt_ids(const Tokenizer& tok, const std::string& text, const PromptOptions& opt) {
  const bool bos = wants_bos(tok, opt.add_bos);
  const std::string wrapped = opt.chat ? apply_chat_template({{"user", text}}, detect_chat_family(tok), true) : text;
  return never_empty(tok.encode(wrapped, bos, !opt.corpus), tok);
}

std::vector<int> chat_prompt_ids(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                                 const std::string& add_bos) {
  const bool bos = wants_bos(tok, add_bos);
  return never_empty(tok.encode(apply_chat_template(messages, detect_chat_family(tok), true), bos, true), tok);
}

}  // namespace hpcinfer
