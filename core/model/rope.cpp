#include "core/model/rope.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace hpcinfer {
namespace {

// YaRN's attention scale for a context extension of `scale` (the YaRN paper, section 3.4; DeepSeek's mscale).
double yarn_get_mscale(double scale, double mscale) { return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }

// The dimension index at which a frequency completes `rotations` turns over `max_pos` positions (YaRN).
double yarn_correction_dim(double rotations, double dim, double base, double max_pos) {
  return dim * std::log(max_pos / (rotations * 2.0 * M_PI)) / (2.0 * std::log(base));
}

}  // namespace

const char* rope_types_supported() { return "default, linear, llama3, yarn, none"; }

void validate_rope(const RopeSpec& s, int64_t head_dim) {
  auto bad = [](const std::string& field, const std::string& why) {
    throw std::invalid_argument("rope " + field + ": " + why);
  };
  if (s.type != "default" && s.type != "linear" && s.type != "llama3" && s.type != "yarn" && s.type != "none")
    bad("rope_type", "unsupported '" + s.type + "' (supported: " + rope_types_supported() + ")");
  if (s.type == "none") return;
  if (!(s.theta > 0)) bad("rope_theta", "must be positive, got " + std::to_string(s.theta));
  const int64_t rot = s.rotary_dim > 0 ? s.rotary_dim : head_dim;
  if (rot % 2 != 0 || rot > head_dim)
    bad("rotary_dim", std::to_string(rot) + " must be even and at most head_dim " + std::to_string(head_dim));
  if ((s.type == "linear" || s.type == "llama3" || s.type == "yarn") && !(s.factor > 0))
    bad("factor", "must be positive for rope_type " + s.type + ", got " + std::to_string(s.factor));
  if (s.type == "llama3") {
    if (s.original_max_position <= 0) bad("original_max_position_embeddings", "must be positive for llama3");
    if (!(s.high_freq_factor > s.low_freq_factor)) bad("high_freq_factor", "must exceed low_freq_factor");
  }
  if (s.type == "yarn" && s.original_max_position <= 0)
    bad("original_max_position_embeddings", "must be positive for yarn");
}

std::vector<double> rope_inv_freq(const RopeSpec& s, int64_t rot, double* attention_factor) {
  const int64_t half = rot / 2;
  std::vector<double> f(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) f[size_t(i)] = 1.0 / std::pow(double(s.theta), double(2 * i) / double(rot));
  double att = 1.0;
  if (s.type == "linear") {
    for (double& x : f) x /= s.factor;
  } else if (s.type == "llama3") {  // frequency-dependent: long wavelengths scaled, short kept, smooth between
    const double old_ctx = s.original_max_position;
    const double low_wavelen = old_ctx / s.low_freq_factor, high_wavelen = old_ctx / s.high_freq_factor;
    for (double& x : f) {
      const double wavelen = 2.0 * M_PI / x;
      if (wavelen > low_wavelen) {
        x = x / s.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = (old_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        x = (1.0 - smooth) * x / s.factor + smooth * x;
      }
    }
  } else if (s.type == "yarn") {  // interpolate low frequencies, keep high ones, a linear ramp between
    double lo = yarn_correction_dim(s.beta_fast, double(rot), s.theta, s.original_max_position);
    double hi = yarn_correction_dim(s.beta_slow, double(rot), s.theta, s.original_max_position);
    if (s.truncate) lo = std::floor(lo), hi = std::ceil(hi);
    lo = std::max(lo, 0.0);
    hi = std::min(hi, double(rot - 1));
    if (lo == hi) hi += 0.001;
    for (int64_t i = 0; i < half; ++i) {
      const double ramp = std::clamp((double(i) - lo) / (hi - lo), 0.0, 1.0);
      const double extrapolation = 1.0 - ramp;  // weight of the unscaled frequency
      f[size_t(i)] = f[size_t(i)] / s.factor * (1.0 - extrapolation) + f[size_t(i)] * extrapolation;
    }
    if (s.attention_factor > 0)
      att = s.attention_factor;
    else if (s.mscale > 0 && s.mscale_all_dim > 0)
      att = yarn_get_mscale(s.factor, s.mscale) / yarn_get_mscale(s.factor, s.mscale_all_dim);
    else
      att = yarn_get_mscale(s.factor, 1.0);
  }
  if (attention_factor) *attention_factor = att;
  return f;
}

RopeTablesHost make_rope_tables(const RopeSpec& s, int64_t head_dim, int max_pos) {
  RopeTablesHost t;
  t.rotary_dim = s.type == "none" ? 0 : (s.rotary_dim > 0 ? s.rotary_dim : head_dim);
  t.max_pos = max_pos;
  t.interleaved = s.interleaved;
  if (t.rotary_dim == 0) return t;
  double att = 1.0;
  const std::vector<double> inv_freq = rope_inv_freq(s, t.rotary_dim, &att);
  const int64_t half = t.rotary_dim / 2;
  t.cos.resize(size_t(max_pos) * size_t(half));
  t.sin.resize(t.cos.size());
  for (int p = 0; p < max_pos; ++p)
    for (int64_t i = 0; i < half; ++i) {
      const float angle = float(p) * float(inv_freq[size_t(i)]);  // float angle, then cos/sin of that float
      float c = std::cos(angle), sn = std::sin(angle);
      if (att != 1.0) c = float(c * att), sn = float(sn * att);
      t.cos[size_t(p) * size_t(half) + size_t(i)] = c;
      t.sin[size_t(p) * size_t(half) + size_t(i)] = sn;
    }
  return t;
}

}  // namespace hpcinfer
