// Block kinds by role and name: adding a kind is its file and one line here.
#include "core/model/blocks/block_registry.hpp"

#include <stdexcept>
#include <utility>

namespace hpcinfer {
namespace {

struct Registered {
  const char* role;
  const BlockKind& (*kind)();
};

const Registered kKinds[] = {
    {"attention", &gqa_attention_kind},
    {"attention", &mla_attention_kind},
    {"attention", &palu_attention_kind},
    {"ffn", &swiglu_ffn_kind},
    {"ffn", &moe_ffn_kind},
};

}  // namespace

std::vector<std::string> block_kind_names(const std::string& role) {
  std::vector<std::string> out;
  for (const Registered& r : kKinds)
    if (role == r.role) out.push_back(r.kind().name());
  return out;
}

const BlockKind& block_kind(const std::string& role, const std::string& name) {
  for (const Registered& r : kKinds)
    if (role == r.role && r.kind().name() == name) return r.kind();
  std::string known;
  for (const std::string& n : block_kind_names(role)) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown " + role + " block kind '" + name + "' (supported: " + known + ")");
}

}  // namespace hpcinfer
