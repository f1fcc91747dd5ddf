// hpcinfer logits --model M --tokens 1,2,3 --out FILE: float32 [n_tokens][vocab] little-endian, one forward pass.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/cli/cli_util.hpp"
#include "core/cli/single_process.hpp"

namespace hpcinfer::cli {

int cmd_logits(const Args& args) {
  CLI::App app{"Write the logits of every position of a token sequence (f32 [n_tokens][vocab], little-endian)",
               "hpcinfer logits"};
  ModelOptions mo;
  mo.add_to(app);
  std::string tokens_arg, out;
  app.add_option("--tokens", tokens_arg, "comma-separated token ids, e.g. 1,15043,3186")->required();
  app.add_option("--out", out, "output file")->required();
  if (auto rc = parse_args(app, args)) return *rc;
  std::vector<int> ids;
  std::stringstream ss(tokens_arg);
  for (std::string t; std::getline(ss, t, ',');) {
    try {
      size_t used = 0;
      ids.push_back(std::stoi(t, &used));
      if (used != t.size()) throw std::invalid_argument(t);
    } catch (const std::exception&) {
      std::fprintf(stderr, "hpcinfer logits: --tokens: '%s' is not a token id\n", t.c_str());
      return 2;
    }
  }
  if (ids.empty()) {
    std::fprintf(stderr, "hpcinfer logits: --tokens is empty\n");
    return 2;
  }
  if (const std::string why = mo.range_error(); !why.empty()) {
    std::fprintf(stderr, "hpcinfer logits: %s\n", why.c_str());
    return 2;
  }
  auto s = open_single_process(mo, 1, int(ids.size()) + 1, false);
  if (const int max_seq = s->model->desc().max_seq_len; int64_t(ids.size()) > max_seq)
    std::fprintf(stderr, "hpcinfer logits: warning: %zu tokens run past the model's max_seq_len %d (positions it was "
                         "not trained for)\n", ids.size(), max_seq);
  // The load, for scripts that measure it (bench/load_bench.sh): bytes packed, seconds reading and packing.
  std::fprintf(stderr, "weights: %.3f GB packed in %.3f s (read %.3f s, pack %.3f s): %.2f GB/s\n",
               double(s->stage->weight_bytes()) / 1e9, s->weight_load_s, s->weight_read_s,
               s->weight_load_s - s->weight_read_s,
               s->weight_load_s > 0 ? double(s->stage->weight_bytes()) / 1e9 / s->weight_load_s : 0.0);
  const int n = int(ids.size());
  const int64_t V = s->model->desc().vocab;
  TokenBatch b;
  b.tokens = ids;
  std::vector<int> rows;
  for (int i = 0; i < n; ++i) {
    b.slot.push_back(0);
    b.pos.push_back(i);
    rows.push_back(i);
  }
  const std::vector<float> logits = forward_logits(*s, b, rows);
  std::ofstream f(out, std::ios::binary);
  f.write(reinterpret_cast<const char*>(logits.data()), std::streamsize(logits.size() * sizeof(float)));
  if (!f) throw std::runtime_error(out + ": cannot write logits");
  std::printf("wrote %d x %lld logits to %s\n", n, static_cast<long long>(V), out.c_str());
  return 0;
}

}  // namespace hpcinfer::cli
