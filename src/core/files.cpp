#include "bulwark/core/files.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <system_error>

#include "core/check.h"

namespace bulwark {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kTmpInfix = ".tmp-";

// Flushes a file's (or directory's) data to the disk, so a crash after the rename finds the
// new content, not an empty file.
void sync_path(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

bool process_alive(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

// Removes what writers of `path` that died mid-write (killed, crashed) left behind: temporary
// files ".<name>.tmp-<pid>-<n>" whose process no longer runs. Temporaries of live processes,
// this one's included, may be writes in progress and stay.
void remove_stale_temporaries(const fs::path& directory, const fs::path& path) {
  const std::string prefix = "." + path.filename().string() + std::string(kTmpInfix);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(directory, ec)) {
    const auto name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const auto rest = name.substr(prefix.size());
    const auto dash = rest.find('-');
    if (dash == std::string::npos) continue;
    pid_t pid = 0;
    try {
      pid = static_cast<pid_t>(std::stol(rest.substr(0, dash)));
    } catch (const std::exception&) {
      continue;
    }
    if (pid > 0 && pid != ::getpid() && !process_alive(pid)) {
      std::error_code ignored;
      fs::remove(entry.path(), ignored);
    }
  }
}

}  // namespace

void write_file_atomically(const fs::path& path,
                           const std::function<void(const fs::path& tmp)>& write) {
  BULWARK_CHECK(!path.empty(), "write_file_atomically: the output path is empty");
  BULWARK_CHECK(!fs::is_directory(path), "write_file_atomically: '{}' is a directory",
                path.string());
  const auto directory = path.has_parent_path() ? path.parent_path() : fs::path(".");
  BULWARK_CHECK(fs::is_directory(directory),
                "write_file_atomically: cannot write '{}': directory '{}' does not exist",
                path.string(), directory.string());
  static std::atomic<uint64_t> counter{0};
  const auto tmp = directory / fmt::format(".{}{}{}-{}", path.filename().string(), kTmpInfix,
                                           ::getpid(), counter.fetch_add(1));
  try {
    write(tmp);
    BULWARK_CHECK(fs::exists(tmp), "write_file_atomically: the writer produced no file for '{}'",
                  path.string());
    sync_path(tmp);
    std::error_code ec;
    fs::rename(tmp, path, ec);
    BULWARK_CHECK(!ec, "write_file_atomically: cannot rename '{}' to '{}': {}", tmp.string(),
                  path.string(), ec.message());
    sync_path(directory);
    remove_stale_temporaries(directory, path);
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
}

void write_text_atomically(const fs::path& path, std::string_view text) {
  write_file_atomically(path, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    BULWARK_CHECK(out.good(), "write_text_atomically: cannot open '{}' for writing: {}",
                  tmp.string(), std::strerror(errno));
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.flush();
    BULWARK_CHECK(out.good(), "write_text_atomically: writing '{}' failed: {}", path.string(),
                  std::strerror(errno));
  });
}

}  // namespace bulwark
