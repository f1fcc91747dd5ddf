// hpcinfer tokenize: print the token ids of a text, separated by single spaces, then a newline.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "core/cli/commands.hpp"
#include "core/tokenizer/tokenizer.hpp"

namespace hpcinfer::cli {

int cmd_tokenize(const Args& args) {
  CLI::App app{"Print the token ids of a text (no BOS unless --bos)", "hpcinfer tokenize"};
  std::string tok_path, text, text_file;
  bool bos = false, no_special = false;
  app.add_option("--tokenizer", tok_path,
                 "tokenizer: .gguf, tokenizer.model, tokenizer.bin (llama2.c), tokenizer.json, encoder.json, or a "
                 "directory holding one")
      ->required();
  auto* text_opt = app.add_option("--text", text, "text to tokenize");
  auto* file_opt = app.add_option("--text-file", text_file, "file whose whole contents are tokenized");
  text_opt->excludes(file_opt);
  app.add_flag("--bos", bos, "put BOS first");
  app.add_flag("--no-parse-special", no_special, "treat the text of control tokens (e.g. <|eot_id|>) as plain text");
  try {
    std::vector<std::string> rev(args.rbegin(), args.rend());  // CLI11 parses a reversed vector
    app.parse(rev);
    if (!*text_opt && !*file_opt) throw CLI::RequiredError("--text or --text-file");
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (*file_opt) {
    std::ifstream f(text_file, std::ios::binary);
    if (!f) throw std::runtime_error(text_file + ": cannot open text file");
    text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  auto tok = load_tokenizer(tok_path);
  std::vector<int> ids = tok->encode(text, bos, !no_special);
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) line += ' ';
    line += std::to_string(ids[i]);
  }
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stdout);
  return 0;
}

}  // namespace hpcinfer::cli
