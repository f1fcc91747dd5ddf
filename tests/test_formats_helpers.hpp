// Test-only writers of tiny model files (header-only; used by test_formats*.cpp): a GGUF builder with a complete
// one-layer llama model whose tensors can be switched to other ggml types, and a tiny Hugging Face directory.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/formats/dequantize.hpp"
#include "core/formats/safetensors_writer.hpp"
#include "core/model/base_source.hpp"
#include "core/model/hf_source.hpp"
#include "core/model/model_layout.hpp"
#include "core/model/model_layout.hpp"
#include "core/model/presets.hpp"

namespace hpcinfer::test {

// Runs fn, expects a std::exception whose message contains every one of `parts` (errors must name the file and the
// tensor, key or field that is wrong).
template <typename Fn>
void expect_error(Fn fn, const std::vector<std::string>& parts) {
  try {
    fn();
    FAIL() << "expected an error mentioning " << parts.front();
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

class TinyGguf {
 public:
  uint32_t magic = 0x46554747u;  // "GGUF"
  uint32_t version = 3;

  // One layer, llama arch, every tensor F32 (values 0.001 * (tensor# + element#)); no output.weight (tied).
  static TinyGguf llama(int64_t dim, int64_t hidden, int heads, int kv, int64_t vocab) {
    TinyGguf g;
    g.kv_str("general.architecture", "llama");
    g.kv_u32("llama.embedding_length", uint32_t(dim));
    g.kv_u32("llama.feed_forward_length", uint32_t(hidden));
    g.kv_u32("llama.block_count", 1);
    g.kv_u32("llama.attention.head_count", uint32_t(heads));
    g.kv_u32("llama.attention.head_count_kv", uint32_t(kv));
    g.kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    g.kv_u32("llama.context_length", 64);
    g.kv_u32("llama.vocab_size", uint32_t(vocab));
    const int64_t hd = dim / heads;
    g.tensor("token_embd.weight", {dim, vocab});
    g.tensor("blk.0.attn_norm.weight", {dim});
    g.tensor("blk.0.attn_q.weight", {dim, heads * hd});
    g.tensor("blk.0.attn_k.weight", {dim, kv * hd});
    g.tensor("blk.0.attn_v.weight", {dim, kv * hd});
    g.tensor("blk.0.attn_output.weight", {heads * hd, dim});
    g.tensor("blk.0.ffn_norm.weight", {dim});
    g.tensor("blk.0.ffn_gate.weight", {dim, hidden});
    g.tensor("blk.0.ffn_up.weight", {dim, hidden});
    g.tensor("blk.0.ffn_down.weight", {hidden, dim});
    g.tensor("output_norm.weight", {dim});
    return g;
  }

  void kv_str(const std::string& k, const std::string& v) { kv_[k] = {8, str_bytes(v)}; }
  void kv_u32(const std::string& k, uint32_t v) { kv_[k] = {4, pod(v)}; }
  void kv_f32(const std::string& k, float v) { kv_[k] = {6, pod(v)}; }
  void kv_u64(const std::string& k, uint64_t v) { kv_[k] = {10, pod(v)}; }
  void kv_f32_array(const std::string& k, const std::vector<float>& v) {
    std::string b = pod(uint32_t(6)) + pod(uint64_t(v.size()));
    for (float x : v) b += pod(x);
    kv_[k] = {9, b};
  }
  void kv_str_array(const std::string& k, const std::vector<std::string>& v) {
    std::string b = pod(uint32_t(8)) + pod(uint64_t(v.size()));
    for (const auto& x : v) b += str_bytes(x);
    kv_[k] = {9, b};
  }
  void kv_i32(const std::string& k, int32_t v) { kv_[k] = {5, pod(v)}; }
  void tensor(const std::string& name, std::vector<int64_t> dims, uint32_t type = 0) {
    tensors_.push_back({name, std::move(dims), type});
  }
  // A tensor with given F32 values.
  void tensor_values(const std::string& name, std::vector<int64_t> dims, std::vector<float> values) {
    tensor(name, std::move(dims));
    values_[name] = std::move(values);
  }
  void set_type(const std::string& name, uint32_t type) {
    for (auto& t : tensors_)
      if (t.name == name) t.type = type;
  }
  void remove(const std::string& name) {
    std::erase_if(tensors_, [&](const T& t) { return t.name == name; });
  }

  void write(const std::string& path) const {
    std::string b = pod(magic) + pod(version) + pod(uint64_t(tensors_.size())) + pod(uint64_t(kv_.size()));
    for (const auto& [k, v] : kv_) b += str_bytes(k) + pod(v.first) + v.second;
    std::vector<std::string> data;
    uint64_t off = 0;
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const T& t = tensors_[i];
      b += str_bytes(t.name) + pod(uint32_t(t.dims.size()));
      for (int64_t d : t.dims) b += pod(uint64_t(d));
      b += pod(t.type) + pod(off);
      auto v = values_.find(t.name);
      data.push_back(v != values_.end() ? std::string(reinterpret_cast<const char*>(v->second.data()), v->second.size() * 4)
                                        : payload(t, i));
      off += (data.back().size() + 31) / 32 * 32;
    }
    b.append((32 - b.size() % 32) % 32, '\0');
    for (auto& d : data) b += d + std::string((32 - d.size() % 32) % 32, '\0');
    std::ofstream(path, std::ios::binary) << b;
  }

 private:
  struct T {
    std::string name;
    std::vector<int64_t> dims;
    uint32_t type;
  };
  template <typename V>
  static std::string pod(V v) {
    return std::string(reinterpret_cast<const char*>(&v), sizeof(v));
  }
  static std::string str_bytes(const std::string& s) { return pod(uint64_t(s.size())) + s; }
  // F32: 0.001 * (i + k); F16 likewise; Q8_0: per row r, every block has scale 1/64 and q[j] = r + j.
  static std::string payload(const T& t, size_t i) {
    const int64_t cols = t.dims[0], rows = t.dims.size() > 1 ? t.dims[1] : 1;
    std::string out;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        const float v = 0.001f * float(i + size_t(r * cols + c));
        if (t.type == 0) out += pod(v);
        if (t.type == 1) out += pod(formats::f32_to_f16(v));
        if (t.type == 8 && c % 32 == 0) out += pod(formats::f32_to_f16(1.0f / 64));
        if (t.type == 8) out += pod(int8_t(r + c % 32));
      }
    return out;
  }
  std::map<std::string, std::pair<uint32_t, std::string>> kv_;
  std::vector<T> tensors_;
  std::map<std::string, std::vector<float>> values_;
};

// A dense llama description: n_layers identical gqa + swiglu layers.
inline ModelDesc dense_desc(int64_t dim, int64_t hidden, int n_layers, int heads, int kv_heads, int64_t head_dim,
                            int64_t vocab) {
  ModelDesc d;
  d.dim = dim;
  d.vocab = vocab;
  LayerSpec l;
  l.ffn.hidden_dim = hidden;
  l.attn.n_heads = heads;
  l.attn.n_kv_heads = kv_heads;
  l.attn.head_dim = head_dim;
  d.layers = uniform_layers(n_layers, l);
  return d;
}

// A small llama description for Hugging Face directory tests.
inline ModelDesc tiny_desc() {
  ModelDesc d = dense_desc(32, 64, 2, 4, 2, 8, 16);
  d.max_seq_len = 64;
  return d;
}

// Writes config.json for `cfg_desc` and model.safetensors for `weights_desc` (random weights, seed 1) into dir.
inline void write_hf_dir(const std::string& dir, const ModelDesc& cfg_desc, const ModelDesc& weights_desc,
                         DType dtype = DType::f16, uint64_t max_shard = 4ull << 30) {
  std::ofstream(dir + "/config.json") << hf_config_json(cfg_desc).dump(2);
  std::vector<TensorSpec> specs;
  std::map<std::string, std::string> canon;
  for (const LogicalTensor& t : stored_tensors(weights_desc)) {
    const std::string& c = t.name;
    const int64_t rows = t.rows, cols = t.cols;
    specs.push_back({hf_tensor_name(c), dtype, rows == 1 ? std::vector<int64_t>{cols} : std::vector<int64_t>{rows, cols}});
    canon[specs.back().name] = c;
  }
  write_safetensors_model(dir, specs, [&](const TensorSpec& s, int64_t r0, int64_t r1, float* o) {
    random_weight_rows(1, canon.at(s.name), r0, r1, s.cols(), o);
  }, max_shard);
}

}  // namespace hpcinfer::test
