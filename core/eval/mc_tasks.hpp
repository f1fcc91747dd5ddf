// Multiple-choice tasks as lists of items: a context, its candidate endings, and the index of the right one.
//
//   piqa       valid.jsonl ({"goal", "sol1", "sol2"} per line) + valid-labels.lst beside it (0 or 1 per line);
//              context "Question: GOAL\nAnswer:", endings " SOL" (lm-evaluation-harness's prompt).
//   hellaswag  llama.cpp's --hellaswag text format, 6 lines per item: context, gold label 0-3, four endings;
//              plain or .bz2; endings get a leading space (the context ends before the ending's first word).
#pragma once

#include <string>
#include <vector>

namespace hpcinfer::eval {

struct McItem {
  std::string context;
  std::vector<std::string> endings;
  int gold = 0;
};

// At most `limit` items (limit <= 0: all), in file order. Throws std::runtime_error naming FILE[:LINE] on a file
// that is missing or does not have the format above.
std::vector<McItem> load_piqa(const std::string& jsonl_path, const std::string& labels_path, int limit);
std::vector<McItem> load_hellaswag(const std::string& path, int limit);

}  // namespace hpcinfer::eval
