#include "core/runtime/requests.hpp"

#include "core/runtime/json_text.hpp"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <filesystem>
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
  if (std::filesystem::is_directory(path))
    throw std::runtime_error(path + ": inputs.prompts is a directory, not a JSONL file of prompts");
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open prompts file: " + std::strerror(errno));
  std::map<std::string, int> id_line;  // ids must be unique: resume and compare match completions by id
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
        if (auto [it, fresh] = id_line.emplace(r.id, lineno); !fresh)
          throw std::runtime_error(path + ":" + std::to_string(lineno) + ": id " + r.id + " repeats line " +
                                   std::to_string(it->second) + " (ids must be unique: resume and compare match "
                                   "completions by id)");
        out.push_back(std::move(r));
        continue;
      }
    } catch (const nlohmann::json::exception& e) {
      std::string what = e.what();  // parse errors quote the text read: a 20 MB line must not come back whole
      if (what.size() > 240) what = what.substr(0, 240) + "...";
      err = std::string("not valid JSON (") + what + ")";
    }
    std::string msg = path + ":" + std::to_string(lineno) + ": " + err;
    if (on_bad_line != "skip") throw std::runtime_error(msg + " (inputs.on_bad_line: skip goes on without it)");
    if (warnings) warnings->push_back(msg + ": skipped");
  }
  if (out.empty()) throw std::runtime_error(path + ": inputs.prompts holds no prompts (" + std::to_string(lineno) + " lines)");
  return out;
}

namespace {
using nlohmann::json;
json logprobs_json(const TokenLogprobs& t) {
  json top = json::array();
  for (const auto& [id, v] : t.top) top.push_back({id, v});
  return {{"token", t.token}, {"logprob", t.logprob}, {"top", top}};
}
TokenLogprobs logprobs_from(const json& j) {
  TokenLogprobs t;
  t.token = j.at("token").get<int>();
  t.logprob = j.at("logprob").get<double>();
  for (const auto& e : j.at("top")) t.top.emplace_back(e.at(0).get<int>(), e.at(1).get<double>());
  return t;
}
}  // namespace

std::string requests_to_wire(const std::vector<Request>& requests) {
  json a = json::array();
  for (const Request& r : requests) {
  const GenerationParams& p = r.params;
  a.push_back({{"index", r.index},
               {"id", r.id},
               {"prompt", r.prompt},
               {"ids", r.prompt_ids},
               {"max_new_tokens", p.max_new_tokens},
               {"sampling", {p.sampling.temperature, p.sampling.top_k, p.sampling.top_p, p.sampling.min_p}},
               {"seed", p.seed},
               {"stop", p.stop_strings},
               {"logprobs", p.logprobs},
               {"top_logprobs", p.top_logprobs},
               {"prompt_logprobs", p.prompt_logprobs}});
  }
  return json_text(a);
}

std::vector<Request> requests_from_wire(const std::string& s) {
  std::vector<Request> out;
  try {
    for (const json& j : json::parse(s)) {
    Request r;
    r.index = j.at("index").get<int>();
    r.id = j.at("id").get<std::string>();
    r.prompt = j.at("prompt").get<std::string>();
    r.prompt_ids = j.at("ids").get<std::vector<int>>();
    GenerationParams& p = r.params;
    p.max_new_tokens = j.at("max_new_tokens").get<int>();
    const json& sp = j.at("sampling");
    p.sampling = {sp.at(0).get<float>(), sp.at(1).get<int>(), sp.at(2).get<float>(), sp.at(3).get<float>()};
    p.seed = j.at("seed").get<uint64_t>();
    p.stop_strings = j.at("stop").get<std::vector<std::string>>();
    p.logprobs = j.at("logprobs").get<bool>();
    p.top_logprobs = j.at("top_logprobs").get<int>();
    p.prompt_logprobs = j.at("prompt_logprobs").get<bool>();
    out.push_back(std::move(r));
    }
    return out;
  } catch (const json::exception& e) {
    throw std::runtime_error(std::string("pipeline: malformed request message: ") + e.what());
  }
}

std::string events_to_wire(const std::vector<TokenEvent>& events) {
  json a = json::array();
  for (const TokenEvent& e : events) {
    json j{{"r", e.request}, {"t", e.token}, {"x", e.text}, {"f", e.finished}, {"why", e.finish_reason}};
    if (e.logprobs) j["lp"] = logprobs_json(*e.logprobs);
    if (!e.prompt_logprobs.empty()) {
      json pl = json::array();
      for (const auto& t : e.prompt_logprobs) pl.push_back(t ? logprobs_json(*t) : json(nullptr));
      j["plp"] = std::move(pl);
    }
    a.push_back(std::move(j));
  }
  return json_text(a);
}

std::vector<TokenEvent> events_from_wire(const std::string& s) {
  std::vector<TokenEvent> out;
  try {
    for (const json& j : json::parse(s)) {
      TokenEvent e;
      e.request = j.at("r").get<int>();
      e.token = j.at("t").get<int>();
      e.text = j.at("x").get<std::string>();
      e.finished = j.at("f").get<bool>();
      e.finish_reason = j.at("why").get<std::string>();
      if (j.contains("lp")) e.logprobs = logprobs_from(j["lp"]);
      if (j.contains("plp"))
        for (const json& t : j["plp"]) e.prompt_logprobs.push_back(t.is_null() ? std::nullopt : std::optional(logprobs_from(t)));
      out.push_back(std::move(e));
    }
  } catch (const json::exception& e) {
    throw std::runtime_error(std::string("pipeline: malformed token events message: ") + e.what());
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
  if (!c.error.empty()) j["error"] = c.error;
  if (c.with_logprobs) {
    nlohmann::json lp = nlohmann::json::array();
    for (const TokenLogprobs& t : c.logprobs) lp.push_back(logprobs_json(t));
    j["logprobs"] = std::move(lp);
  }
  return json_text(j);
}

CompletionWriter::CompletionWriter(const std::string& path, bool append) : path_(path) {
  f_ = std::fopen(path.c_str(), append ? "a" : "w");
  if (!f_) throw std::runtime_error(path + ": cannot write completions: " + std::strerror(errno));
}
CompletionWriter::~CompletionWriter() {
  if (f_) std::fclose(f_);
}
void CompletionWriter::write(const Completion& c) {
  std::string s = completion_json(c) + "\n";
  if (std::fwrite(s.data(), 1, s.size(), f_) != s.size() || std::fflush(f_) != 0)
    throw std::runtime_error(path_ + ": cannot write a completion: " + std::strerror(errno));
}

}  // namespace hpcinfer
