#include "core/tokenizer/prompt_ids.hpp"

#include <stdexcept>

#include "core/tokenizer/chat_template.hpp"

namespace hpcinfer {

std::vector<int> prompt_ids(const Tokenizer& tok, const std::string& text, const PromptOptions& opt) {
  bool bos = false;
  if (opt.add_bos == "auto") bos = tok.add_bos();
  else if (opt.add_bos == "true") bos = true;
  else if (opt.add_bos != "false")
    throw std::invalid_argument("add_bos must be auto, true or false, got '" + opt.add_bos + "'");
  bos = bos && tok.bos_id() >= 0;
  const std::string wrapped = opt.chat ? apply_chat_template({{"user", text}}, detect_chat_family(tok), true) : text;
  std::vector<int> ids = tok.encode(wrapped, bos, !opt.corpus);
  if (ids.empty()) ids.push_back(tok.bos_id() >= 0 ? tok.bos_id() : 0);
  return ids;
}

}  // namespace hpcinfer
