#include "core/palu/palu_compress.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Dense>
#include <Eigen/SVD>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/eval/text_file.hpp"
#include "core/formats/dequantize.hpp"
#include "core/formats/safetensors_writer.hpp"
#include "core/model/blocks/block.hpp"
#include "core/model/hf_source.hpp"
#include "core/model/model_layout.hpp"
#include "core/runtime/rank_session.hpp"
#include "core/tokenizer/tokenizer.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace hpcinfer::palu {
namespace {

using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// A tensor of the source as f32 [rows, cols] (any dtype its loader serves).
MatF read_f32(const ModelSource& src, const std::string& name) {
  const TensorView v = src.tensor(name);
  MatF m(v.rows, v.cols);
  for (int64_t r = 0; r < v.rows; ++r) formats::dequantize_row(v.dtype, v.row_ptr(r), v.cols, m.data() + r * v.cols);
  src.release(name);
  return m;
}

// One group's factors: up [rows, r] and down [r, dim] with up down ~ w.
struct Factors {
  MatD up, down;
};

// Whitening of one layer: S lower triangular with C (+ lambda I) = S S^T; identity for whitening "none".
struct Whitening {
  MatD s;          // [dim, dim]
  double damping = 0;
};

Whitening whiten(const MatD& gram, int layer) {
  const int64_t dim = gram.rows();
  Whitening w;
  const double mean_diag = gram.diagonal().mean();
  double lambda = 0;
  for (int attempt = 0; attempt < 12; ++attempt) {
    MatD c = gram;
    if (lambda > 0) c.diagonal().array() += lambda;
    Eigen::LLT<MatD> llt(c);
    if (llt.info() == Eigen::Success) {
      w.s = llt.matrixL();
      w.damping = lambda;
      return w;
    }
    lambda = lambda == 0 ? 1e-6 * std::max(mean_diag, 1e-30) : lambda * 10;
  }
  throw std::runtime_error("palu compress: layer " + std::to_string(layer) + ": the calibration Gram matrix (" +
                           std::to_string(dim) + "x" + std::to_string(dim) +
                           ") stays not positive definite even damped by " + std::to_string(lambda) +
                           " (are the calibration tokens all alike?)");
}

Factors factor(const MatD& w, const Whitening* wh, int64_t r) {
  Factors f;
  if (!wh) {
    Eigen::BDCSVD<MatD> svd(w, Eigen::ComputeThinU | Eigen::ComputeThinV);
    f.up = svd.matrixU().leftCols(r) * svd.singularValues().head(r).asDiagonal();
    f.down = svd.matrixV().leftCols(r).transpose();
    return f;
  }
  const MatD ws = w * wh->s.triangularView<Eigen::Lower>();
  Eigen::BDCSVD<MatD> svd(ws, Eigen::ComputeThinU | Eigen::ComputeThinV);
  f.up = svd.matrixU().leftCols(r) * svd.singularValues().head(r).asDiagonal();
  // down = V_r^T S^-1, i.e. down^T = S^-T V_r
  f.down = wh->s.triangularView<Eigen::Lower>().transpose().solve(MatD(svd.matrixV().leftCols(r))).transpose();
  return f;
}

// X^T X of each layer's attention input over the calibration tokens, by a forward pass of the source model in this
// process (f32 weights, the cpu backend).
std::vector<MatD> calibration_grams(const CompressOptions& o, const ModelDesc& d, int64_t& used,
                                    const std::function<void(const std::string&)>& log) {
  if (o.calib.empty()) throw std::invalid_argument("--calib: a calibration text file is needed for whitening cholesky");
  if (!fs::exists(o.calib)) throw std::invalid_argument("--calib: " + o.calib + ": no such file");
  ExperimentConfig cfg;
  cfg.model.path = o.model;
  cfg.model.format = o.format;
  cfg.plugins.weights = "f32";
  cfg.threads = o.threads;
  LaunchEnv env;
  auto s = describe_rank(cfg, env);
  if (o.tokenizer.empty() && s->model->tokenizer_path().empty())
    throw std::invalid_argument("--calib: " + o.model + " has no tokenizer to read the calibration text with; give "
                                "--tokenizer, or --whitening none");
  s->tokenizer = open_tokenizer(o.tokenizer, *s->model);
  const std::string text = eval::read_text_file(o.calib);
  const std::vector<int> all = s->tokenizer->encode(text, false, false);
  const int64_t need = o.calib_skip_tokens + o.calib_tokens;
  if (int64_t(all.size()) < need)
    throw std::invalid_argument("--calib: " + o.calib + " has " + std::to_string(all.size()) +
                                " tokens; --calib-skip-tokens " + std::to_string(o.calib_skip_tokens) +
                                " + --calib-tokens " + std::to_string(o.calib_tokens) + " need " + std::to_string(need));
  const int64_t seq = std::min<int64_t>(o.calib_seq_len, d.max_seq_len);
  if (seq < 2) throw std::invalid_argument("--calib-seq-len: must be at least 2");
  open_rank(*s, 1, int(seq));
  const int64_t dim = d.dim;
  std::vector<MatD> gram(size_t(d.n_layers()), MatD::Zero(dim, dim));
  std::vector<DeviceBuffer> norms;
  Backend& be = *s->backend;
  for (int l = 0; l < d.n_layers(); ++l) {
    const MatF w = read_f32(*s->model, layer_tensor(l, "attn_norm"));
    norms.emplace_back(be, size_t(dim) * sizeof(float));
    be.copy_to_device(norms.back().get(), w.data(), size_t(dim) * sizeof(float));
  }
  DeviceBuffer xn(be, size_t(seq * dim) * sizeof(float));
  MatF host(seq, dim);
  s->stage->set_layer_tap([&](int layer, const float* x, int64_t n) {
    be.rmsnorm(x, norms[size_t(layer)].f32(), n, dim, d.norm_eps, xn.f32());
    be.copy_to_host(host.data(), xn.f32(), size_t(n * dim) * sizeof(float));
    const MatD xd = host.topRows(n).cast<double>();
    gram[size_t(layer)].selfadjointView<Eigen::Lower>().rankUpdate(xd.transpose());
  });
  used = 0;
  for (int64_t at = o.calib_skip_tokens; at < need;) {
    TokenBatch b;
    b.tokens.push_back(d.bos_id);
    while (int64_t(b.tokens.size()) < seq && at < need) b.tokens.push_back(all[size_t(at++)]);
    for (int i = 0; i < int(b.tokens.size()); ++i) b.slot.push_back(0), b.pos.push_back(i);
    s->stage->embed(b);
    s->stage->forward_layers(b);
    used += int64_t(b.tokens.size());
    log("calibration: " + std::to_string(at - o.calib_skip_tokens) + "/" + std::to_string(o.calib_tokens) + " tokens");
  }
  s->stage->set_layer_tap({});
  for (MatD& g : gram) g = g.selfadjointView<Eigen::Lower>();  // both triangles
  return gram;
}

// Tokenizer files beside the model go with it; a tokenizer inside the model file (GGUF) is named by path.
void carry_tokenizer(const ModelSource& src, const fs::path& out, json& config) {
  const fs::path model(src.path());
  const std::string tok = src.tokenizer_path();
  if (src.format() == "hf") {
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                          "generation_config.json", "chat_template.jinja", "vocab.json", "merges.txt"})
      if (fs::exists(model / f)) fs::copy_file(model / f, out / f);
    if (!tok.empty() && !fs::exists(out / fs::path(tok).filename()))  // named by the source's hpcinfer_tokenizer
      config["hpcinfer_tokenizer"] = fs::absolute(tok).string();
    return;
  }
  if (tok.empty()) return;
  if (fs::path(tok) == model) {  // GGUF: the tokenizer is in the model file
    config["hpcinfer_tokenizer"] = fs::absolute(tok).string();
    return;
  }
  fs::copy_file(tok, out / fs::path(tok).filename());
  config["hpcinfer_tokenizer"] = fs::path(tok).filename().string();
}

}  // namespace

int64_t kept_rank(double ratio, int64_t full, int64_t cap, int rank_multiple) {
  const int64_t m = std::max(1, rank_multiple);
  int64_t r = int64_t(std::llround(ratio * double(full) / double(m))) * m;
  r = std::max(r, m);
  return std::min({r, full, cap});
}

CompressReport compress(const CompressOptions& o, const std::function<void(const std::string&)>& log) {
  const auto t0 = std::chrono::steady_clock::now();
  if (!(o.ratio > 0 && o.ratio <= 1))
    throw std::invalid_argument("--ratio: must be in (0, 1] (the fraction of rank kept), got " + std::to_string(o.ratio));
  if (o.rank_multiple < 1) throw std::invalid_argument("--rank-multiple: must be at least 1");
  if (o.whitening != "cholesky" && o.whitening != "none")
    throw std::invalid_argument("--whitening: '" + o.whitening + "' (cholesky | none)");
  if (o.dtype != "f32" && o.dtype != "bf16") throw std::invalid_argument("--dtype: '" + o.dtype + "' (f32 | bf16)");
  if (o.calib_tokens < 1) throw std::invalid_argument("--calib-tokens: must be positive");
  if (o.calib_skip_tokens < 0) throw std::invalid_argument("--calib-skip-tokens: must not be negative");
  if (o.out.empty()) throw std::invalid_argument("--out: an output directory is needed");
  if (fs::exists(o.out) && !(fs::is_directory(o.out) && fs::is_empty(o.out)))
    throw std::invalid_argument("--out: " + o.out + " exists and is not an empty directory");

  auto src = open_model(o.model, o.format);
  const ModelDesc& d = src->desc();
  ModelDesc pd = d;  // the compressed model's description
  CompressReport rep;
  for (int l = 0; l < d.n_layers(); ++l) {
    const AttentionSpec& a = d.layers[size_t(l)].attn;
    if (a.kind != "gqa") throw std::invalid_argument("--model: layer " + std::to_string(l) + " has " + a.kind +
                                                     " attention; palu compresses gqa layers");
    if (o.group_size < 1 || a.n_kv_heads % o.group_size)
      throw std::invalid_argument("--group-size: " + std::to_string(o.group_size) + " does not divide the " +
                                  std::to_string(a.n_kv_heads) + " kv heads of layer " + std::to_string(l) +
                                  " (group sizes that do: divisors of " + std::to_string(a.n_kv_heads) + ")");
    const int64_t full = o.group_size * a.head_dim;
    AttentionSpec& p = pd.layers[size_t(l)].attn;
    p.kind = "palu";
    p.palu_group_size = o.group_size;
    p.palu_rank_k = p.palu_rank_v = kept_rank(o.ratio, full, std::min(full, d.dim), o.rank_multiple);
    block_kind("attention", "palu").validate(pd, l);  // biases, norms, sinks: refused here, before any work
    rep.rank_k.push_back(p.palu_rank_k);
    rep.rank_v.push_back(p.palu_rank_v);
    rep.kv_bytes_per_token_before += 2.0 * sizeof(float) * double(a.n_kv_heads * a.head_dim);
    rep.kv_bytes_per_token_after +=
        sizeof(float) * double(a.n_kv_heads / o.group_size) * double(p.palu_rank_k + p.palu_rank_v);
  }

  std::vector<MatD> grams;
  if (o.whitening == "cholesky") grams = calibration_grams(o, d, rep.calib_tokens_used, log);

  // Factors of every layer: keys (up and down) and values (up folded into wo below, down kept).
  struct LayerFactors {
    std::vector<Factors> k, v;  // per group
  };
  std::vector<LayerFactors> lf(size_t(d.n_layers()));
  for (int l = 0; l < d.n_layers(); ++l) {
    const AttentionSpec& a = pd.layers[size_t(l)].attn;
    Whitening wh;
    if (!grams.empty()) {
      wh = whiten(grams[size_t(l)], l);
      grams[size_t(l)].resize(0, 0);
    }
    rep.damping.push_back(wh.damping);
    const MatD wk = read_f32(*src, layer_tensor(l, "wk")).cast<double>();
    const MatD wv = read_f32(*src, layer_tensor(l, "wv")).cast<double>();
    const int64_t rows = a.palu_group_size * a.head_dim;
    for (int64_t g = 0; g < a.n_kv_heads / a.palu_group_size; ++g) {
      lf[size_t(l)].k.push_back(factor(wk.middleRows(g * rows, rows), grams.empty() ? nullptr : &wh, a.palu_rank_k));
      lf[size_t(l)].v.push_back(factor(wv.middleRows(g * rows, rows), grams.empty() ? nullptr : &wh, a.palu_rank_v));
    }
    log("layer " + std::to_string(l) + ": rank " + std::to_string(a.palu_rank_k) + " of " + std::to_string(rows) +
        (wh.damping > 0 ? ", damped by " + std::to_string(wh.damping) : ""));
  }

  // The compressed model: every stored tensor of its description, the factors computed, the rest copied.
  fs::create_directories(o.out);
  const DType dt = o.dtype == "f32" ? DType::f32 : DType::bf16;
  std::vector<TensorSpec> specs;
  std::map<std::string, std::string> canonical_of;  // file name -> canonical
  for (const LogicalTensor& t : stored_tensors(pd)) {
    const std::string hf = hf_tensor_name(t.name, pd.arch);
    specs.push_back({hf, dt, t.rows == 1 ? std::vector<int64_t>{t.cols} : std::vector<int64_t>{t.rows, t.cols}});
    canonical_of[hf] = t.name;
  }
  // wo of the layer being written, read once for the rows of wo_latent.
  int wo_layer = -1;
  MatF wo;
  auto fill = [&](const TensorSpec& spec, int64_t r0, int64_t r1, float* out) {
    const std::string& c = canonical_of.at(spec.name);
    const int l = c.rfind("layers.", 0) == 0 ? std::stoi(c.substr(7)) : -1;
    const std::string what = l < 0 ? c : c.substr(c.find('.', 7) + 1);
    const int64_t cols = spec.cols();
    Eigen::Map<MatF> o_rows(out, r1 - r0, cols);
    if (what == "wk_down" || what == "wv_down" || what == "wk_up") {
      const AttentionSpec& a = pd.layers[size_t(l)].attn;
      const auto& groups = what == "wv_down" ? lf[size_t(l)].v : lf[size_t(l)].k;
      const int64_t per = what == "wk_up" ? a.palu_group_size * a.head_dim : (what == "wk_down" ? a.palu_rank_k : a.palu_rank_v);
      for (int64_t r = r0; r < r1; ++r) {
        const Factors& f = groups[size_t(r / per)];
        o_rows.row(r - r0) = (what == "wk_up" ? f.up.row(r % per) : f.down.row(r % per)).cast<float>();
      }
      return;
    }
    if (what == "wo_latent") {
      const AttentionSpec& a = pd.layers[size_t(l)].attn;
      if (wo_layer != l) wo = read_f32(*src, layer_tensor(l, "wo")), wo_layer = l;
      const int64_t hd = a.head_dim, rv = a.palu_rank_v, per_kv = a.n_heads / a.n_kv_heads;
      for (int64_t h = 0; h < a.n_heads; ++h) {
        const int64_t kv = h / per_kv, g = kv / a.palu_group_size, j = kv % a.palu_group_size;
        const MatD& up = lf[size_t(l)].v[size_t(g)].up;  // [gs*hd, rv]
        o_rows.middleCols(h * rv, rv) =
            (wo.block(r0, h * hd, r1 - r0, hd).cast<double>() * up.middleRows(j * hd, hd)).cast<float>();
      }
      return;
    }
    const TensorView v = src->tensor(c);
    for (int64_t r = r0; r < r1; ++r) formats::dequantize_row(v.dtype, v.row_ptr(r), v.cols, out + (r - r0) * cols);
    if (r1 == v.rows) src->release(c);  // a permuted copy (llama2.c, GGUF q/k) is not kept past its last rows
  };
  const std::vector<std::string> files = write_safetensors_model(o.out, specs, fill);

  json config = hf_config_json(d, o.dtype == "f32" ? "float32" : "bfloat16");
  const fs::path calib_abs = o.calib.empty() ? fs::path() : fs::weakly_canonical(fs::absolute(o.calib));
  config["palu"] = {
      {"method", o.whitening == "cholesky" ? "palu-whitened-svd" : "palu-svd"},
      {"ratio", o.ratio},
      {"group_size", o.group_size},
      {"rank_multiple", o.rank_multiple},
      {"rank_k", rep.rank_k},
      {"rank_v", rep.rank_v},
      {"allocation", "uniform"},
      {"whitening", o.whitening},
      {"damping", rep.damping},
      {"source", fs::weakly_canonical(fs::absolute(o.model)).string()},
      {"calibration", o.whitening == "none" ? json(nullptr)
                                            : json{{"file", calib_abs.string()},
                                                   {"skip_tokens", o.calib_skip_tokens},
                                                   {"tokens", o.calib_tokens},
                                                   {"token_range", {o.calib_skip_tokens, o.calib_skip_tokens + o.calib_tokens}},
                                                   {"seq_len", o.calib_seq_len},
                                                   {"bos_per_sequence", true}}},
      {"kv_bytes_per_token_f32", {{"before", rep.kv_bytes_per_token_before}, {"after", rep.kv_bytes_per_token_after}}}};
  carry_tokenizer(*src, o.out, config);
  std::ofstream(fs::path(o.out) / "config.json") << config.dump(2) << "\n";
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace hpcinfer::palu
