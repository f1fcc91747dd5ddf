// Named model shapes for `hpcinfer make-model`: real published architectures (random weights of the real shape, for
// speed and memory benchmarks) and tiny test shapes. Also the deterministic random weights themselves.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hpcinfer/model.hpp"

namespace hpcinfer {

struct ModelPreset {
  std::string name;
  ModelDesc desc;
  std::string source;        // where the shape comes from (a Hugging Face repo's config.json) or "test shape"
  bool config_only = false;  // too big to write by default: make-model writes weights only with --weights
};

const std::vector<ModelPreset>& model_presets();
const ModelPreset* find_preset(const std::string& name);  // nullptr when unknown

// Number of weights of a model of this description (embeddings counted once when tied).
int64_t param_count(const ModelDesc& d);

// Deterministic random weights: rows [row_begin, row_end) of canonical tensor `canonical` ([rows, cols]) into
// out[(row_end - row_begin) * cols]. Norm weights are 1; everything else about normal(0, 0.02) (a sum of four
// uniforms, scaled). Each row has its own stream seeded from (seed, canonical, row): the values do not depend on how
// the rows are chunked.
void random_weight_rows(uint64_t seed, const std::string& canonical, int64_t row_begin, int64_t row_end, int64_t cols,
                        float* out);

}  // namespace hpcinfer
