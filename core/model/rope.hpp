// RoPE frequencies: the one place that turns a RopeSpec (default, linear, llama3, yarn) into cos/sin tables.
// Backends only rotate by the tables (Backend::rope); attention kinds ask the stage for the tables of their spec.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hpcinfer/model.hpp"

namespace hpcinfer {

struct RopeTablesHost {
  int64_t rotary_dim = 0;
  int max_pos = 0;
  bool interleaved = false;
  std::vector<float> cos, sin;  // [max_pos, rotary_dim / 2], already multiplied by the attention factor (yarn)
};

// The supported RoPE types, for messages: "default, linear, llama3, yarn, none".
const char* rope_types_supported();
// Throws std::invalid_argument naming the field when a spec cannot be computed (unknown type, factor <= 0, ...).
void validate_rope(const RopeSpec& spec, int64_t head_dim);
// Inverse frequencies [rotary_dim / 2] in double, and the cos/sin scale (yarn's attention factor; 1 otherwise).
std::vector<double> rope_inv_freq(const RopeSpec& spec, int64_t rotary_dim, double* attention_factor);
// Tables for positions [0, max_pos): angle = float(p) * float(inv_freq[i]) (as llama.cpp and llama2.c compute it).
RopeTablesHost make_rope_tables(const RopeSpec& spec, int64_t head_dim, int max_pos);

}  // namespace hpcinfer
