#include "core/runtime/requests.hpp"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace hpcinfer {
namespace {
bool valid_ids(const nlohmann::json& a) {
  if (!a.is_array() || a.empty()) return false;
  for (const auto& v : a)
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) return false;
  return true;
}
}  // namespace

std::vector<Request> read_prompts_jsonl(const std::string& path, const std::string& on_bad_line,
                                        std::vector<std::string>* warnings) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open prompts file: " + std::strerror(errno));
  std::vector<Request> out;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string err;
    try {
      auto j = nlohmann::json::parse(line);
      const bool has_ids = j.is_object() && j.contains("prompt_ids");
      if (!j.is_object()) err = "not a JSON object";
      else if (has_ids && !valid_ids(j["prompt_ids"])) err = "field \"prompt_ids\" must be a non-empty list of token ids (integers >= 0)";
      else if (j.contains("prompt") && !j["prompt"].is_string()) err = "field \"prompt\" must be a string";
      else if (!has_ids && !j.contains("prompt")) err = "missing string field \"prompt\" (or a \"prompt_ids\" list)";
      else {
        Request r;
        r.index = int(out.size());
        if (j.contains("prompt")) r.prompt = j["prompt"].get<std::string>();
        if (has_ids) r.prompt_ids = j["prompt_ids"].get<std::vector<int>>(), r.ids_given = true;
        if (j.contains("id")) r.id = j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump();
        else r.id = std::to_string(lineno);
        out.push_back(std::move(r));
        continue;
      }
    } catch (const nlohmann::json::parse_error& e) {
      err = std::string("not valid JSON (") + e.what() + ")";
    }
    std::string msg = path + ":" + std::to_string(lineno) + ": " + err;
    if (on_bad_line != "skip") throw std::runtime_error(msg + " (inputs.on_bad_line: skip goes on without it)");
    if (warnings) warnings->push_back(msg + ": skipped");
  }
  return out;
}

std::string completion_json(const Completion& c) {
  nlohmann::json j{{"id", c.id},
                   {"index", c.index},
                   {"prompt", c.prompt},
                   {"completion", c.text},
                   {"token_ids", c.token_ids},
                   {"prompt_tokens", c.prompt_tokens},
                   {"completion_tokens", c.token_ids.size()},
                   {"finish_reason", c.finish_reason},
                   {"timings", {{"ttft_s", c.ttft_s}, {"latency_s", c.latency_s}, {"tpot_s", c.tpot_s}}}};
  if (c.with_logprobs) {
    nlohmann::json lp = nlohmann::json::array();
    for (const TokenLogprobs& t : c.logprobs) {
      nlohmann::json top = nlohmann::json::array();
      for (const auto& [id, v] : t.top) top.push_back({id, v});
      lp.push_back({{"token", t.token}, {"logprob", t.logprob}, {"top", top}});
    }
    j["logprobs"] = std::move(lp);
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

CompletionWriter::CompletionWriter(const std::string& path) : path_(path) {
  f_ = std::fopen(path.c_str(), "w");
  if (!f_) throw std::runtime_error(path + ": cannot write completions: " + std::strerror(errno));
}
CompletionWriter::~CompletionWriter() {
  if (f_) std::fclose(f_);
}
void CompletionWriter::write(const Completion& c) {
  std::string s = completion_json(c) + "\n";
  std::fwrite(s.data(), 1, s.size(), f_);
  std::fflush(f_);
}

}  // namespace hpcinfer
