// The "palu" section of a compressed model's config.json (written by `hpcinfer palu compress`, read by the HF
// loader): which method made the factors and the sizes every loader needs.
//   "palu": {"method": "palu-whitened-svd", "ratio": 0.7, "group_size": 4, "rank_multiple": 8,
//            "rank_k": [r per layer], "rank_v": [r per layer],
//            "calibration": {"file": ..., "tokens": N, "range": ..., "disjoint_from": ...},
//            "whitening": [{"layer": i, "damping": d}, ...]}
// Only group_size, rank_k and rank_v shape the model; the rest records how the factors were made.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "hpcinfer/model.hpp"

namespace hpcinfer {

// Sets every layer's attention to kind "palu" with the section's group size and ranks (a single number for rank_k
// or rank_v means every layer). Errors name `file` and the key (palu.rank_k[3], ...).
void read_palu_section(const nlohmann::json& palu, const std::string& file, ModelDesc& d);

}  // namespace hpcinfer
