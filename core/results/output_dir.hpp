// The run's outputs.dir as something several jobs and reruns can meet safely (issue 18):
//   - one job at a time: OutputDirLock holds flock() on OUTDIR/.hpcinfer.lock for the job's lifetime (released by the
//     kernel when the holder dies, so a killed job leaves no stale lock); a second job is refused with the holder's
//     host and pid, which the lock file records;
//   - result files replaced whole: write_file_atomic() writes a temporary file beside the target and renames it over
//     (readers see the old file or the new one, never half of one);
//   - resume: finished_completions() reads completions.jsonl, drops a torn last line (a job killed mid-write) by
//     truncating the file to its last whole line, and returns the ids already finished.
#pragma once

#include <filesystem>
#include <set>
#include <string>

namespace hpcinfer {

class OutputDirLock {
 public:
  // Creates `dir` if needed and takes its lock; throws std::runtime_error naming the directory, the holder's host and
  // pid, and what to do, when another process holds it.
  explicit OutputDirLock(const std::filesystem::path& dir);
  ~OutputDirLock();
  OutputDirLock(const OutputDirLock&) = delete;
  OutputDirLock& operator=(const OutputDirLock&) = delete;

 private:
  int fd_ = -1;
};

// Writes `text` to `path` through PATH.tmp.<pid> + rename(); throws std::runtime_error naming the path.
void write_file_atomic(const std::filesystem::path& path, const std::string& text);

struct FinishedCompletions {
  std::set<std::string> ids;    // the "id" of every whole line
  int lines = 0;                // whole lines kept
  bool dropped_torn_line = false;
};
// Reads completions.jsonl at `path` (absent: nothing finished). A last line without its newline or not valid JSON
// is cut off the file; a bad line before the last is an error naming path:line (the file is not ours to repair).
FinishedCompletions finished_completions(const std::filesystem::path& path);

// The first line where two config.yaml texts differ, as "line N: 'a' vs 'b'"; "" when equal. Keys that may change
// between a run and its resumption without changing any result (outputs.fresh, threads) are ignored.
std::string config_difference(const std::string& before, const std::string& now);

}  // namespace hpcinfer
