#include "core/results/compare_runs.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace hpcinfer {

using nlohmann::json;

RunCompletions read_run_completions(const std::string& run) {
  namespace fs = std::filesystem;
  fs::path file(run);
  if (fs::is_directory(file)) file /= "completions.jsonl";
  if (!fs::is_regular_file(file))
    throw std::invalid_argument(run + ": not a results directory with completions.jsonl, nor a completions file");
  std::ifstream in(file);
  if (!in) throw std::invalid_argument(file.string() + ": cannot open");
  RunCompletions out;
  out.path = file.string();
  int lineno = 0;
  for (std::string line; std::getline(in, line);) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = file.string() + ":" + std::to_string(lineno) + ": ";
    try {
      const json j = json::parse(line);
      const std::string id = j.at("id").is_string() ? j["id"].get<std::string>() : j["id"].dump();
      RunCompletion c;
      c.token_ids = j.at("token_ids").get<std::vector<int>>();
      if (j.contains("logprobs")) {
        c.has_logprobs = true;
        for (const json& t : j["logprobs"]) c.top.push_back(t.at("top").get<TopK>());
        if (c.top.size() != c.token_ids.size())
          throw std::runtime_error("logprobs has " + std::to_string(c.top.size()) + " entries for " +
                                   std::to_string(c.token_ids.size()) + " token_ids");
      }
      if (!out.by_id.emplace(id, std::move(c)).second) throw std::runtime_error("id \"" + id + "\" repeated");
      out.order.push_back(id);
    } catch (const json::exception& e) {
      throw std::runtime_error(where + "not a completion line (" + e.what() + ")");
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(where + e.what());
    }
  }
  return out;
}

double topk_kl(const TopK& p, const TopK& q) {
  constexpr double kFloor = 1e-12;  // a rest bucket rounded to 0 or below
  double kl = 0, sum_p = 0, sum_q = 0;
  for (const auto& [id, lp] : p) {
    auto it = std::find_if(q.begin(), q.end(), [id = id](const auto& e) { return e.first == id; });
    if (it == q.end()) continue;
    const double pi = std::exp(lp);
    kl += pi * (lp - it->second);
    sum_p += pi;
    sum_q += std::exp(it->second);
  }
  const double rest_p = 1.0 - sum_p, rest_q = std::max(kFloor, 1.0 - sum_q);
  if (rest_p > kFloor) kl += rest_p * std::log(rest_p / rest_q);
  return std::max(0.0, kl);
}

Comparison compare_runs(const RunCompletions& a, const RunCompletions& b) {
  Comparison c;
  c.run_a = a.path;
  c.run_b = b.path;
  std::vector<std::string> ids = a.order;
  for (const auto& id : b.order)
    if (!a.by_id.count(id)) ids.push_back(id);
  double div_sum = 0, kl_sum = 0;
  int div_n = 0;
  int k_a = 0, k_b = 0;
  for (const auto& id : ids) {
    PromptComparison p;
    p.id = id;
    auto ia = a.by_id.find(id), ib = b.by_id.find(id);
    p.in_a = ia != a.by_id.end();
    p.in_b = ib != b.by_id.end();
    if (!p.in_a || !p.in_b) {
      ++c.mismatches;
      (p.in_a ? p.tokens_a : p.tokens_b) = (p.in_a ? ia : ib)->second.token_ids.size();
      c.prompts.push_back(p);
      continue;
    }
    const RunCompletion &x = ia->second, &y = ib->second;
    p.tokens_a = x.token_ids.size();
    p.tokens_b = y.token_ids.size();
    const size_t n = std::min(p.tokens_a, p.tokens_b);
    size_t d = 0;
    while (d < n && x.token_ids[d] == y.token_ids[d]) ++d;
    p.exact = d == n && p.tokens_a == p.tokens_b;
    if (p.exact) ++c.exact_matches;
    else {
      ++c.mismatches;
      p.first_divergence = int(d);
      div_sum += double(d);
      ++div_n;
    }
    if (x.has_logprobs && y.has_logprobs) {
      const size_t last = std::min(n, p.exact ? n : d + 1);  // the common context, and the divergent step
      double sum = 0, worst = 0;
      for (size_t t = 0; t < last; ++t) {
        const double kl = topk_kl(x.top[t], y.top[t]);
        sum += kl;
        worst = std::max(worst, kl);
        if (!x.top[t].empty()) k_a = std::max(k_a, int(x.top[t].size()));
        if (!y.top[t].empty()) k_b = std::max(k_b, int(y.top[t].size()));
      }
      p.kl_positions = int(last);
      if (last > 0) {
        p.mean_kl = sum / double(last);
        p.max_kl = worst;
        kl_sum += *p.mean_kl;
        ++c.kl_prompts;
        c.max_kl = std::max(c.max_kl.value_or(0.0), worst);
      }
    }
    c.prompts.push_back(p);
  }
  if (div_n > 0) c.mean_first_divergence = div_sum / double(div_n);
  if (c.kl_prompts > 0) c.mean_kl = kl_sum / double(c.kl_prompts);
  c.top_k = std::min(k_a, k_b);
  return c;
}

namespace {
template <typename T>
json opt(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}
std::string num(const std::optional<double>& v, const char* f = "%.4g") {
  if (!v) return "-";
  char b[64];
  std::snprintf(b, sizeof b, f, *v);
  return b;
}
std::string status(const PromptComparison& p) {
  if (!p.in_a) return "only in B";
  if (!p.in_b) return "only in A";
  return p.exact ? "match" : "DIFFER";
}
}  // namespace

json comparison_json(const Comparison& c) {
  json prompts = json::array();
  for (const auto& p : c.prompts)
    prompts.push_back({{"id", p.id},
                       {"in_a", p.in_a},
                       {"in_b", p.in_b},
                       {"exact_match", p.exact},
                       {"first_divergence", opt(p.first_divergence)},
                       {"tokens_a", p.tokens_a},
                       {"tokens_b", p.tokens_b},
                       {"mean_kl", opt(p.mean_kl)},
                       {"max_kl", opt(p.max_kl)},
                       {"kl_positions", p.kl_positions}});
  return {{"run_a", c.run_a},
          {"run_b", c.run_b},
          {"prompts", prompts},
          {"summary",
           {{"prompts", c.prompts.size()},
            {"exact_matches", c.exact_matches},
            {"mismatches", c.mismatches},
            {"mean_first_divergence", opt(c.mean_first_divergence)},
            {"mean_kl", opt(c.mean_kl)},
            {"max_kl", opt(c.max_kl)},
            {"kl_prompts", c.kl_prompts},
            {"top_k", c.top_k},
            {"kl_method", "KL(A || B) in nats, top-K approximation: buckets = token ids in both top-K lists + the rest "
                          "of the vocabulary (a lower bound of the full-vocabulary KL), averaged over the common "
                          "prefix and the first divergent position"}}}};
}

std::string comparison_summary_line(const Comparison& c) {
  std::ostringstream o;
  o << c.prompts.size() << " prompts, " << c.exact_matches << " exact matches";
  if (c.mismatches) o << ", " << c.mismatches << " differ";
  o << ", mean first divergence " << num(c.mean_first_divergence);
  if (c.mean_first_divergence) o << " (over the " << c.mismatches << " that differ)";
  if (c.kl_prompts)
    o << ", mean KL " << num(c.mean_kl) << " nats (max " << num(c.max_kl) << "; top-" << c.top_k
      << " approximation, " << c.kl_prompts << " prompts)";
  else
    o << ", KL not computed (a run without logprobs: set outputs.logprobs: K in both)";
  return o.str();
}

std::string comparison_text(const Comparison& c) {
  std::ostringstream o;
  char line[256];
  std::snprintf(line, sizeof line, "%-16s %-10s %10s %9s %9s %12s\n", "id", "status", "first_div", "tokens_a",
                "tokens_b", "mean_kl");
  o << "A: " << c.run_a << "\nB: " << c.run_b << "\n" << line;
  for (const auto& p : c.prompts) {
    std::snprintf(line, sizeof line, "%-16s %-10s %10s %9zu %9zu %12s\n", p.id.c_str(), status(p).c_str(),
                  p.first_divergence ? std::to_string(*p.first_divergence).c_str() : "-", p.tokens_a, p.tokens_b,
                  num(p.mean_kl, "%.3g").c_str());
    o << line;
  }
  o << "compare: " << comparison_summary_line(c) << "\n";
  return o.str();
}

std::string comparison_markdown(const Comparison& c) {
  std::ostringstream o;
  o << "# Correctness report\n\n"
    << "- A (reference): `" << c.run_a << "`\n- B: `" << c.run_b << "`\n\n"
    << "**" << comparison_summary_line(c) << ".**\n\n"
    << "| id | status | first divergence | tokens A | tokens B | mean KL | max KL |\n|---|---|---|---|---|---|---|\n";
  for (const auto& p : c.prompts)
    o << "| " << p.id << " | " << status(p) << " | "
      << (p.first_divergence ? std::to_string(*p.first_divergence) : "-") << " | " << p.tokens_a << " | "
      << p.tokens_b << " | " << num(p.mean_kl, "%.3g") << " | " << num(p.max_kl, "%.3g") << " |\n";
  o << "\nMethod: prompts are matched by id. First divergence is the first token index where the generated ids "
       "differ (the shorter length when one is a prefix of the other). KL(A || B) is in nats and is a top-K "
       "approximation: completions.jsonl keeps the K most likely tokens of each step, so the divergence is taken over "
       "the token ids in both runs' top-K plus one bucket for the rest of the vocabulary (a lower bound of the exact "
       "KL), averaged over the common prefix and the first divergent position.\n";
  return o.str();
}

}  // namespace hpcinfer
