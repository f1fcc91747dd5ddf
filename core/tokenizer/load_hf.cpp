// Hugging Face tokenizer files: tokenizer.json (+ tokenizer_config.json), and GPT-2 style encoder.json + vocab.bpe.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/tokenizer/bpe_tokenizer.hpp"
#include "core/tokenizer/spm_tokenizer.hpp"

namespace hpcinfer {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot open");
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

json parse_json(const std::string& path) {
  try {
    return json::parse(read_text(path));
  } catch (const json::exception& e) {
    throw std::runtime_error(path + ": not valid JSON: " + e.what());
  }
}

int find_piece(const VocabData& v, std::initializer_list<const char*> texts) {
  for (const char* t : texts)
    for (size_t i = 0; i < v.pieces.size(); ++i)
      if (v.pieces[i] == t) return static_cast<int>(i);
  return -1;
}

// Special ids by their usual spellings, where the files did not say.
void guess_specials(VocabData& v) {
  if (v.bos < 0) v.bos = find_piece(v, {"<|begin_of_text|>", "<s>", "<｜begin▁of▁sentence｜>"});
  if (v.eos < 0) v.eos = find_piece(v, {"<|end_of_text|>", "</s>", "<|endoftext|>", "<｜end▁of▁sentence｜>"});
  if (v.eot < 0) v.eot = find_piece(v, {"<|eot_id|>", "<|im_end|>"});
  if (v.bos < 0 && v.eos >= 0 && v.pieces[v.eos] == "<|endoftext|>") v.bos = v.eos;  // GPT-2 uses it for both
}

// A token given in tokenizer_config.json: a string or {"content": ...}.
std::string token_content(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
  return "";
}

void read_tokenizer_config(const fs::path& cfg_path, VocabData& v) {
  if (!fs::exists(cfg_path)) return;
  json c = parse_json(cfg_path.string());
  auto id_of = [&](const char* key) {
    if (!c.contains(key)) return -1;
    std::string t = token_content(c[key]);
    return t.empty() ? -1 : find_piece(v, {t.c_str()});
  };
  if (int id = id_of("bos_token"); id >= 0) v.bos = id;
  if (int id = id_of("eos_token"); id >= 0) v.eos = id;
  if (c.contains("add_bos_token") && c["add_bos_token"].is_boolean()) v.add_bos = c["add_bos_token"].get<bool>();
  if (c.contains("chat_template")) {
    const json& t = c["chat_template"];
    if (t.is_string()) v.chat_template = t.get<std::string>();
    if (t.is_array())  // [{"name": "default", "template": "..."}, ...]
      for (const json& e : t)
        if (e.value("name", "") == "default" && e.contains("template")) v.chat_template = e["template"].get<std::string>();
  }
}

// Regexes of the pre_tokenizer tree: Split patterns in order; ByteLevel(use_regex) adds GPT-2's.
void collect_patterns(const json& p, std::vector<std::string>& out, bool& byte_level) {
  if (!p.is_object()) return;
  const std::string type = p.value("type", "");
  if (type == "Sequence" && p.contains("pretokenizers")) {
    for (const json& q : p["pretokenizers"]) collect_patterns(q, out, byte_level);
  } else if (type == "Split" && p.contains("pattern")) {
    const json& pat = p["pattern"];
    if (pat.contains("Regex")) out.push_back(pat["Regex"].get<std::string>());
    if (pat.contains("String")) out.push_back("\\Q" + pat["String"].get<std::string>() + "\\E");
  } else if (type == "ByteLevel") {
    byte_level = true;
    if (p.value("use_regex", true)) out.push_back(PreTokenizer::gpt2_pattern());
  }
}

}  // namespace

std::unique_ptr<Tokenizer> load_hf_tokenizer_json(const std::string& path) {
  json j = parse_json(path);
  auto missing = [&](const std::string& field) {
    return std::runtime_error(path + ": field " + field + " is missing (not a Hugging Face BPE tokenizer.json?)");
  };
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) throw missing("model");
  const json& model = j["model"];
  const std::string type = model.value("type", "BPE");
  if (type != "BPE")
    throw std::runtime_error(path + ": field model.type is '" + type + "'; only BPE models are supported");
  if (!model.contains("vocab") || !model["vocab"].is_object()) throw missing("model.vocab");
  if (!model.contains("merges") || !model["merges"].is_array()) throw missing("model.merges");

  VocabData v;
  v.source = path;
  auto put = [&](const std::string& text, int64_t id, TokenType t) {
    if (id < 0 || id > (1 << 24)) throw std::runtime_error(path + ": token '" + text + "' has id " + std::to_string(id));
    if (size_t(id) >= v.pieces.size()) {
      v.pieces.resize(id + 1);
      v.types.resize(id + 1, TokenType::unused);
    }
    v.pieces[id] = text;
    v.types[id] = t;
  };
  for (const auto& [text, id] : model["vocab"].items()) put(text, id.get<int64_t>(), TokenType::normal);
  if (j.contains("added_tokens") && j["added_tokens"].is_array())
    for (const json& a : j["added_tokens"])
      put(a.at("content").get<std::string>(), a.at("id").get<int64_t>(),
          a.value("special", false) ? TokenType::control : TokenType::user_defined);

  MergeList merges;
  merges.reserve(model["merges"].size());
  for (const json& m : model["merges"]) {
    if (m.is_string())
      merges.push_back(split_merge_line(m.get<std::string>(), path + ": model.merges"));
    else if (m.is_array() && m.size() == 2)
      merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    else
      throw std::runtime_error(path + ": field model.merges has an entry that is neither \"a b\" nor [a, b]");
  }

  std::vector<std::string> patterns;
  bool byte_level = false;
  if (j.contains("pre_tokenizer")) collect_patterns(j["pre_tokenizer"], patterns, byte_level);
  if (j.contains("decoder") && j["decoder"].dump().find("ByteLevel") != std::string::npos) byte_level = true;

  // post_processor TemplateProcessing whose "single" starts with a special token: that is BOS, added by default.
  if (j.contains("post_processor")) {
    auto check = [&](const json& tp) {
      if (!tp.is_object() || tp.value("type", "") != "TemplateProcessing" || !tp.contains("single")) return;
      const json& single = tp["single"];
      if (!single.is_array() || single.empty() || !single[0].contains("SpecialToken")) return;
      int id = find_piece(v, {single[0]["SpecialToken"].value("id", "").c_str()});
      if (id >= 0) v.bos = id, v.add_bos = true;
    };
    const json& pp = j["post_processor"];
    check(pp);
    if (pp.is_object() && pp.contains("processors") && pp["processors"].is_array())
      for (const json& q : pp["processors"]) check(q);
  }
  read_tokenizer_config((fs::path(path).parent_path() / "tokenizer_config.json"), v);
  guess_specials(v);

  if (byte_level) {
    v.style = PieceStyle::byte_level;
    if (patterns.empty()) patterns.push_back(PreTokenizer::gpt2_pattern());
    return std::make_unique<BpeTokenizer>(std::move(v), merges, std::move(patterns),
                                          model.value("ignore_merges", false));
  }
  // SentencePiece converted to BPE (Llama-2's tokenizer.json: "▁" for spaces, byte fallback): run the SPM
  // algorithm with the merge order as scores (an earlier merge = a higher score).
  v.style = PieceStyle::spm;
  v.scores.assign(v.pieces.size(), -1e30f);
  std::unordered_map<std::string, int> index;
  for (size_t i = 0; i < v.pieces.size(); ++i) index.emplace(v.pieces[i], int(i));
  for (size_t r = merges.size(); r-- > 0;)
    if (auto it = index.find(merges[r].first + merges[r].second); it != index.end()) v.scores[it->second] = -float(r);
  const std::string norm = j.contains("normalizer") ? j["normalizer"].dump() : "";
  const std::string pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"].dump() : "";
  v.add_space_prefix = norm.find("Prepend") != std::string::npos || pre.find("Metaspace") != std::string::npos;
  if (v.unk < 0 && model.contains("unk_token") && model["unk_token"].is_string())
    v.unk = find_piece(v, {model["unk_token"].get<std::string>().c_str()});
  return std::make_unique<SpmTokenizer>(std::move(v));
}

std::unique_ptr<Tokenizer> load_encoder_json_dir(const std::string& dir) {
  const std::string enc_path = (fs::path(dir) / "encoder.json").string();
  const std::string bpe_path = (fs::path(dir) / "vocab.bpe").string();
  json enc = parse_json(enc_path);
  if (!enc.is_object()) throw std::runtime_error(enc_path + ": expected a JSON object {piece: id}");
  VocabData v;
  v.source = enc_path;
  v.style = PieceStyle::byte_level;
  for (const auto& [text, idj] : enc.items()) {
    int64_t id = idj.get<int64_t>();
    if (id < 0 || id > (1 << 24)) throw std::runtime_error(enc_path + ": token '" + text + "' has id " + std::to_string(id));
    if (size_t(id) >= v.pieces.size()) v.pieces.resize(id + 1);
    v.pieces[id] = text;
  }
  v.types.assign(v.pieces.size(), TokenType::normal);
  const std::string text = read_text(bpe_path);
  MergeList merges;
  merges.reserve(text.size() / 10);
  for (size_t pos = 0, line_no = 1; pos < text.size(); ++line_no) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = end + 1;
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;  // GPT-2's header line
    merges.push_back(split_merge_line(line, bpe_path + ":" + std::to_string(line_no)));
  }
  // Llama-3 (128000 regular pieces): its pre-tokenizer, ignore_merges, and the 256 special tokens after the
  // regular ones, named as in Llama 3.1+ (the files do not list them).
  const bool llama3 = v.pieces.size() >= 100000;
  if (v.pieces.size() == 128000) {
    const char* named[] = {"<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                           "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
                           "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"};
    for (int i = 0; i < 256; ++i) {
      v.pieces.push_back(i < 11 ? named[i] : "<|reserved_special_token_" + std::to_string(i - 11 + 3) + "|>");
      v.types.push_back(TokenType::control);
    }
    v.bos = 128000, v.eos = 128001, v.eot = 128009;
    v.add_bos = true;
  }
  for (size_t i = 0; i < v.pieces.size(); ++i)
    if (v.pieces[i] == "<|endoftext|>") v.types[i] = TokenType::control;
  guess_specials(v);
  std::vector<std::string> patterns{llama3 ? PreTokenizer::llama3_pattern() : PreTokenizer::gpt2_pattern()};
  return std::make_unique<BpeTokenizer>(std::move(v), merges, std::move(patterns), llama3);
}

}  // namespace hpcinfer
