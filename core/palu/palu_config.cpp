#include "core/palu/palu_config.hpp"

#include <stdexcept>

namespace hpcinfer {
namespace {

using nlohmann::json;

int64_t layer_value(const json& palu, const char* key, int layer, int n_layers, const std::string& file) {
  const std::string where = file + ": key palu." + key;
  if (!palu.contains(key)) throw std::runtime_error(where + " is missing");
  const json& v = palu.at(key);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (!v.is_array() || int(v.size()) != n_layers)
    throw std::runtime_error(where + ": expected an integer or a list of " + std::to_string(n_layers) +
                             " integers (one per layer), got " + v.dump());
  const json& x = v[size_t(layer)];
  if (!x.is_number_integer())
    throw std::runtime_error(where + "[" + std::to_string(layer) + "]: expected an integer, got " + x.dump());
  return x.get<int64_t>();
}

}  // namespace

void read_palu_section(const json& palu, const std::string& file, ModelDesc& d) {
  if (!palu.is_object()) throw std::runtime_error(file + ": key palu: expected an object, got " + palu.dump());
  if (!palu.contains("group_size") || !palu["group_size"].is_number_integer())
    throw std::runtime_error(file + ": key palu.group_size: expected an integer");
  const int group = palu["group_size"].get<int>();
  for (int i = 0; i < d.n_layers(); ++i) {
    AttentionSpec& a = d.layers[size_t(i)].attn;
    if (a.kind != "gqa")
      throw std::runtime_error(file + ": key palu: layer " + std::to_string(i) + " has " + a.kind +
                               " attention; palu compresses gqa layers only");
    a.kind = "palu";
    a.palu_group_size = group;
    a.palu_rank_k = layer_value(palu, "rank_k", i, d.n_layers(), file);
    a.palu_rank_v = layer_value(palu, "rank_v", i, d.n_layers(), file);
  }
}

}  // namespace hpcinfer
