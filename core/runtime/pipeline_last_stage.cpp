// The pipeline engine's last stage (pipeline_engine.hpp): each request's state, the next tokens of a batch (per
// request parameters: rows that want the same kind of choice go through the head together), the stop rules, the
// completions (run) and the token events (serve).
#include <algorithm>
#include <map>
#include <tuple>

#include "core/runtime/next_tokens.hpp"
#include "core/runtime/pipeline_engine.hpp"

namespace hpcinfer {
namespace {
constexpr size_t kPromptRowsPerHead = 64;  // echo's prompt logits come to the host this many rows at a time

// The end of the longest prefix of text[0, end) that ends on a whole UTF-8 character, not before `from`.
size_t whole_characters(const std::string& text, size_t from, size_t end) {
  size_t lead = end;  // after the loop, text[lead - 1] starts the last character (or lead == from)
  while (lead > from && (static_cast<unsigned char>(text[lead - 1]) & 0xC0) == 0x80) --lead;
  if (lead == from) return from;
  const unsigned char c = static_cast<unsigned char>(text[lead - 1]);
  const size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  return lead - 1 + len > end ? lead - 1 : end;
}
}  // namespace

void PipelineEngine::apply_admitted(const Batch& b) {
  for (int c : b.cancelled) {
    live_.erase(c);
    if (auto f = logit_files_.find(c); f != logit_files_.end()) {
      std::fclose(f->second);
      logit_files_.erase(f);
    }
  }
  for (const Request& r : b.admitted) {
    Live l{Sampler(r.params.sampling, r.params.seed), {}, r.params, {}, -1, -1, false, 0};
    if (r.params.prompt_logprobs) l.prompt_ids = r.prompt_ids;
    l.c.id = r.id;
    l.c.index = r.index;
    l.c.prompt = r.prompt;
    l.c.prompt_tokens = int(r.prompt_ids.size());
    l.c.with_logprobs = r.params.logprobs;
    l.prev_token = r.prompt_ids.empty() ? -1 : r.prompt_ids.back();
    live_.insert_or_assign(r.index, std::move(l));
  }
}

// The batch rows of sampled row i's request: after the previous sampled row, up to its own.
static std::pair<int, int> request_rows(const std::vector<int>& sample_rows, size_t i) {
  return {i == 0 ? 0 : sample_rows[i - 1] + 1, sample_rows[i]};
}

std::vector<std::optional<TokenLogprobs>> PipelineEngine::prompt_logprobs(const Batch& b, size_t i, const Live& l) {
  const auto [first, last] = request_rows(b.sample_rows, i);
  const int64_t V = stage_.desc().vocab;
  const int k = l.params.top_logprobs;
  std::vector<std::optional<TokenLogprobs>> out(l.prompt_ids.size());
  std::vector<float> logits;
  // Row `first + t` holds the distribution of prompt token t + 1.
  for (int r0 = first; r0 < last; r0 += int(kPromptRowsPerHead)) {
    const int r1 = std::min(last, r0 + int(kPromptRowsPerHead));
    std::vector<int> rows;
    for (int r = r0; r < r1; ++r) rows.push_back(r);
    logits.resize(rows.size() * size_t(V));
    stage_.head(rows, logits.data());
    for (int r = r0; r < r1; ++r) {
      const size_t t = size_t(r - first) + 1;
      if (t < out.size())
        out[t] = token_logprobs(logits.data() + size_t(r - r0) * size_t(V), V, l.prompt_ids[t], k);
    }
  }
  return out;
}

void PipelineEngine::choose_tokens(const Batch& b, std::vector<int>& tokens,
                                   std::vector<std::optional<TokenLogprobs>>& lps) {
  const size_t m = b.sample_rows.size();
  const int64_t V = stage_.desc().vocab;
  tokens.assign(m, -1);
  lps.assign(m, std::nullopt);
  auto live = [&](size_t i) -> Live& { return live_.at(b.sample_requests[i]); };
  auto k_of = [](const GenerationParams& p) { return p.logprobs ? std::max(p.top_logprobs, 1) : 0; };
  auto trim = [](std::optional<TokenLogprobs>& t, const GenerationParams& p) {
    if (t && int(t->top.size()) > p.top_logprobs) t->top.resize(size_t(std::max(p.top_logprobs, 0)));
  };
  if (!opt_.logits_dir.empty()) {  // keep_logits: every row of the batch to the host (every tp rank: the head may gather)
    std::vector<int> rows(size_t(b.tokens.size()));
    for (int r = 0; r < b.tokens.size(); ++r) rows[size_t(r)] = r;
    std::vector<float> logits(rows.size() * size_t(V));
    stage_.head(rows, logits.data());
    for (size_t i = 0; i < m; ++i) {
      const auto [first, last] = request_rows(b.sample_rows, i);
      if (stage_.plan().world.tp_rank() == 0)
        write_logits(b.sample_requests[i], logits.data() + size_t(first) * size_t(V), size_t(last - first + 1) * size_t(V));
      Live& l = live(i);
      if (l.params.max_new_tokens == 0) continue;
      const float* row = logits.data() + size_t(last) * size_t(V);
      tokens[i] = l.sampler.sample(row, V);
      if (l.params.logprobs) lps[i] = token_logprobs(row, V, tokens[i], l.params.top_logprobs);
    }
    return;
  }
  // Rows alike in temperature and logprobs share the head's pass (next_tokens.hpp), in order of first appearance
  // (every tp rank of the stage groups alike). On the host backend logprobs come from the whole row.
  const bool device = stage_.backend().memory_space() != MemorySpace::host;
  std::map<std::tuple<float, int>, std::vector<size_t>> groups;
  std::vector<std::tuple<float, int>> order;
  for (size_t i = 0; i < m; ++i) {
    const GenerationParams& p = live(i).params;
    if (p.max_new_tokens == 0) continue;
    const auto key = std::make_tuple(std::max(p.sampling.temperature, 0.0f), k_of(p));
    auto [it, fresh] = groups.try_emplace(key);
    if (fresh) order.push_back(key);
    it->second.push_back(i);
  }
  for (const auto& key : order) {
    const std::vector<size_t>& idx = groups[key];
    const int k = std::get<1>(key);
    std::vector<int> rows;
    std::vector<Sampler*> samplers;
    for (size_t i : idx) rows.push_back(b.sample_rows[i]), samplers.push_back(&live(i).sampler);
    if (k > 0 && !device) {
      std::vector<float> logits(rows.size() * size_t(V));
      stage_.head(rows, logits.data());
      for (size_t j = 0; j < idx.size(); ++j) {
        const float* row = logits.data() + j * size_t(V);
        tokens[idx[j]] = samplers[j]->sample(row, V);
        lps[idx[j]] = token_logprobs(row, V, tokens[idx[j]], k);
      }
    } else {
      NextTokens next = next_tokens_on_backend(stage_, rows, samplers, k);
      for (size_t j = 0; j < idx.size(); ++j) {
        tokens[idx[j]] = next.tokens[j];
        if (k > 0) lps[idx[j]] = std::move(next.logprobs[j]);
      }
    }
    for (size_t i : idx) trim(lps[i], live(i).params);
  }
}

std::string PipelineEngine::release_text(Live& l, bool finished) const {
  const std::string& text = l.c.text;
  l.released = std::min(l.released, text.size());
  size_t end = text.size();
  if (!finished) {  // hold back what a stop string could still claim, and a character's unfinished bytes
    size_t hold = 0;
    for (const std::string& s : l.params.stop_strings) hold = std::max(hold, s.empty() ? 0 : s.size() - 1);
    end = std::max(l.released, end > hold ? end - hold : 0);
    end = whole_characters(text, l.released, end);
  }
  std::string out = text.substr(l.released, end - l.released);
  l.released = end;
  return out;
}

// Last stage: logits of the sampled rows, next tokens, stop rules; reports finished requests.
std::vector<PipelineEngine::Sampled> PipelineEngine::finish_on_last_stage(const Batch& b, const OnComplete& done,
                                                                          std::vector<TokenEvent>& events) {
  const double t = now(), ar = stage_.allreduce_s();
  const bool reporter = stage_.plan().world.tp_rank() == 0;
  // Echo's prompt logprobs first (the prefill's rows), then the next tokens; every tp rank calls the head alike.
  std::vector<std::vector<std::optional<TokenLogprobs>>> prompt_lps(b.sample_rows.size());
  for (size_t i = 0; i < b.sample_rows.size(); ++i) {
    Live& l = live_.at(b.sample_requests[i]);
    if (!l.prefilled && l.params.prompt_logprobs) prompt_lps[i] = prompt_logprobs(b, i, l);
  }
  std::vector<int> tokens;
  std::vector<std::optional<TokenLogprobs>> lps;
  choose_tokens(b, tokens, lps);
  std::vector<Sampled> out;
  for (size_t i = 0; i < b.sample_rows.size(); ++i) {
    const int index = b.sample_requests[i];
    Live& l = live_.at(index);
    const int row = b.sample_rows[i];
    const int token = tokens[i];
    const double tn = now();
    l.prefilled = true;
    TokenEvent ev;
    ev.request = index;
    ev.prompt_logprobs = std::move(prompt_lps[i]);
    bool finished = false;
    if (l.params.max_new_tokens == 0) {
      l.c.finish_reason = "length";
      finished = true;
    } else if (std::find(opt_.stop_ids.begin(), opt_.stop_ids.end(), token) != opt_.stop_ids.end()) {
      if (l.first_token_at < 0) l.first_token_at = tn;
      l.c.finish_reason = "stop";
      finished = true;
    } else {
      if (l.first_token_at < 0) l.first_token_at = tn;
      if (l.params.logprobs && reporter) l.c.logprobs.push_back(*lps[i]);
      ev.token = token;
      ev.logprobs = std::move(lps[i]);
      l.c.token_ids.push_back(token);
      if (tok_) l.c.text += tok_->decode_token(l.prev_token, token);
      l.prev_token = token;
      ++stats_.generated_tokens;
      for (const std::string& s : l.params.stop_strings) {
        const size_t at = l.c.text.find(s, l.c.text.size() > s.size() + 64 ? l.c.text.size() - s.size() - 64 : 0);
        if (!s.empty() && at != std::string::npos) {
          l.c.text.resize(at);
          l.c.finish_reason = "stop";
          finished = true;
          break;
        }
      }
      if (!finished && (int(l.c.token_ids.size()) >= l.params.max_new_tokens ||
                        b.tokens.pos[size_t(row)] + 2 >= stage_.max_ctx())) {
        l.c.finish_reason = "length";
        finished = true;
      }
    }
    if (opt_.live && reporter) {
      ev.text = release_text(l, finished);
      ev.finished = finished;
      if (finished) ev.finish_reason = l.c.finish_reason;
      events.push_back(std::move(ev));
    }
    out.push_back({b.tokens.slot[size_t(row)], token, finished ? 1 : 0});
    if (finished) {
      if (l.first_token_at < 0) l.first_token_at = tn;
      l.c.ttft_s = l.first_token_at - t0_;
      l.c.latency_s = tn - t0_;
      l.c.tpot_s = l.c.token_ids.size() > 1 ? (tn - l.first_token_at) / double(l.c.token_ids.size() - 1) : 0.0;
      if (reporter && done) done(l.c);
      if (auto f = logit_files_.find(index); f != logit_files_.end()) {
        std::fclose(f->second);
        logit_files_.erase(f);
      }
      live_.erase(index);
    }
  }
  const double te = now();
  stats_.compute_s += te - t;
  spans_.add("head", t - t0_, te - t0_, b.group, int(b.sample_rows.size()), stage_.allreduce_s() - ar);
  return out;
}

}  // namespace hpcinfer
