#include "cli/progress.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>

namespace bulwark::cli {

Progress::Progress(std::string label, int64_t total, bool quiet)
    : label_(std::move(label)),
      total_(std::max<int64_t>(total, 1)),
      quiet_(quiet),
      terminal_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {}

Progress::~Progress() {
  if (!finished_ && terminal_ && !quiet_) std::fputs("\n", stderr);
}

void Progress::update(int64_t done, const std::string& detail) {
  if (quiet_) return;
  const auto now = std::chrono::steady_clock::now();
  const double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double left = fraction > 0 ? elapsed * (1 - fraction) / fraction : 0.0;
  if (terminal_) {
    if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(fraction * kWidth);
    fmt::print(stderr, "\r{} [{}{}] {:3.0f}% {} | {:.0f}s left   ", label_,
               std::string(filled, '#'), std::string(kWidth - filled, '.'), fraction * 100,
               detail, left);
    std::fflush(stderr);
  } else {
    const auto decile = static_cast<int64_t>(fraction * 10);
    if (decile == last_logged_decile_) return;
    last_logged_decile_ = decile;
    spdlog::info("{} {:3.0f}% {} ({:.0f}s left)", label_, fraction * 100, detail, left);
  }
}

void Progress::finish(const std::string& detail) {
  if (finished_) return;
  finished_ = true;
  if (quiet_) return;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (terminal_) fmt::print(stderr, "\r\033[K");
  spdlog::info("{} done in {:.1f}s: {}", label_, elapsed, detail);
}

}  // namespace bulwark::cli
