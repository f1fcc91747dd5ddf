#include "core/runtime/sampler.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/ops.hpp"

namespace hpcinfer {

float Sampler::weight(float logit, float max, float temperature) { return std::exp((logit - max) / temperature); }

namespace {
bool more_probable(const std::pair<float, int>& a, const std::pair<float, int>& b) {
  return a.first != b.first ? a.first > b.first : a.second < b.second;
}
}  // namespace

int Sampler::sample(const float* logits, int64_t vocab) {
  if (p_.temperature <= 0.0f) return int(kernels::argmax(logits, vocab));
  // Softmax at temperature over all tokens (f64 sum for stability).
  float mx = logits[0];
  for (int64_t i = 1; i < vocab; ++i) mx = std::max(mx, logits[i]);
  cand_.resize(size_t(vocab));
  double sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i) {
    const float e = weight(logits[i], mx, p_.temperature);
    cand_[size_t(i)] = {e, int(i)};
    sum += e;
  }
  for (auto& c : cand_) c.first = float(c.first / sum);
  std::sort(cand_.begin(), cand_.end(), more_probable);
  return filter_and_draw(true);
}

int Sampler::sample_candidates(const float* cand_logits, const int* cand_ids, int64_t count, float max, double sum,
                               int64_t vocab) {
  cand_.resize(size_t(count));
  for (int64_t i = 0; i < count; ++i)
    cand_[size_t(i)] = {float(double(weight(cand_logits[i], max, p_.temperature)) / sum), cand_ids[i]};
  std::sort(cand_.begin(), cand_.end(), more_probable);
  return filter_and_draw(count >= vocab);
}

int Sampler::filter_and_draw(bool complete) {
  size_t keep = cand_.size();
  bool cut = false;  // a filter ended the list inside the candidates
  if (p_.top_k > 0 && size_t(p_.top_k) <= keep) keep = size_t(p_.top_k), cut = true;
  if (p_.min_p > 0.0f) {
    const float floor = p_.min_p * cand_[0].first;
    size_t k = 1;
    while (k < keep && cand_[k].first >= floor) ++k;
    if (k < keep) cut = true;
    keep = k;
  }
  if (p_.top_p < 1.0f) {
    double acc = 0.0;
    size_t k = 0;
    while (k < keep) {
      acc += cand_[k].first;
      ++k;
      if (acc >= p_.top_p) {
        cut = true;
        break;
      }
    }
    keep = k;
  }
  if (!complete && !cut) return -1;  // the kept set may reach past the candidates
  double total = 0.0;
  for (size_t i = 0; i < keep; ++i) total += cand_[i].first;
  const double r = std::uniform_real_distribution<double>(0.0, total)(rng_);
  double acc = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    acc += cand_[i].first;
    if (r < acc) return cand_[i].second;
  }
  return cand_[keep - 1].second;
}

}  // namespace hpcinfer
