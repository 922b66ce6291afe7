#pragma once
// Progress for long work: a bar redrawn in place on a terminal, plain log lines otherwise,
// nothing with --quiet.

#include <chrono>
#include <cstdint>
#include <string>

namespace bulwark::cli {

class Progress {
 public:
  /// `total` steps of work called `label`. quiet suppresses all output.
  Progress(std::string label, int64_t total, bool quiet);
  ~Progress();
  /// Reports that `done` of `total` steps are finished; `detail` follows the bar.
  void update(int64_t done, const std::string& detail);
  /// Ends the bar (a last line with `detail`).
  void finish(const std::string& detail);

 private:
  std::string label_;
  int64_t total_;
  bool quiet_;
  bool terminal_;
  bool finished_ = false;
  int64_t last_logged_decile_ = -1;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace bulwark::cli
