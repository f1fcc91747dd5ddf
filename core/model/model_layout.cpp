#include "core/model/model_layout.hpp"

#include <stdexcept>

#include "core/model/blocks/block.hpp"
#include "core/model/rope.hpp"

namespace hpcinfer {

ModelLayout model_layout(const ModelDesc& d) {
  ModelLayout out;
  out.n_layers = d.n_layers();
  const ShardRule vocab_rows{ShardRule::Axis::rows, "vocab", 1};
  out.tensors.push_back({"tok_embeddings", -1, d.vocab, d.dim, vocab_rows});
  out.anchors.push_back({"embed.out", -1, AnchorDecl::Combine::sum, {"vocab"}});
  for (int i = 0; i < d.n_layers(); ++i) {
    const LayerSpec& l = d.layers[size_t(i)];
    block_kind("attention", l.attn.kind).declare(d, i, out);
    block_kind("ffn", l.ffn.kind).declare(d, i, out);
  }
  out.tensors.push_back({"norm", -1, 1, d.dim, {}});
  out.tensors.push_back({"output", -1, d.vocab, d.dim, vocab_rows});
  out.anchors.push_back({"head.logits", -1, AnchorDecl::Combine::concat_cols, {"vocab"}});
  return out;
}

std::vector<LogicalTensor> stored_tensors(const ModelDesc& d) {
  std::vector<LogicalTensor> out = model_layout(d).tensors;
  if (d.tied_embeddings) std::erase_if(out, [](const LogicalTensor& t) { return t.name == "output"; });
  return out;
}

std::pair<int64_t, int64_t> tensor_shape(const ModelDesc& d, const std::string& name) {
  for (const LogicalTensor& t : model_layout(d).tensors)
    if (t.name == name) return {t.rows, t.cols};
  throw std::invalid_argument("unknown canonical tensor name " + name);
}

void validate_desc(const ModelDesc& d, const std::string& file) {
  auto need = [&](bool ok, const std::string& key, const std::string& why) {
    if (!ok) throw std::runtime_error(file + ": " + key + ": " + why);
  };
  need(d.dim > 0, "dim", "must be positive, got " + std::to_string(d.dim));
  need(d.n_layers() > 0, "n_layers", "must be positive, got " + std::to_string(d.n_layers()));
  need(d.vocab > 0, "vocab", "must be positive, got " + std::to_string(d.vocab));
  need(d.max_seq_len > 0, "max_seq_len", "must be positive, got " + std::to_string(d.max_seq_len));
  for (int i = 0; i < d.n_layers(); ++i) {
    const LayerSpec& l = d.layers[size_t(i)];
    try {
      block_kind("attention", l.attn.kind).validate(d, i);
      block_kind("ffn", l.ffn.kind).validate(d, i);
      validate_rope(l.attn.rope, l.attn.head_dim);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(file + ": " + e.what());
    }
  }
}

std::vector<LayerSpec> uniform_layers(int n, const LayerSpec& layer) {
  return std::vector<LayerSpec>(size_t(std::max(n, 0)), layer);
}

}  // namespace hpcinfer
