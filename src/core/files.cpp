#include "bulwark/core/files.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <system_error>

#include "core/check.h"

namespace bulwark {
namespace fs = std::filesystem;

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
  const auto tmp = directory / fmt::format(".{}.tmp-{}-{}", path.filename().string(), ::getpid(),
                                           counter.fetch_add(1));
  try {
    write(tmp);
    BULWARK_CHECK(fs::exists(tmp), "write_file_atomically: the writer produced no file for '{}'",
                  path.string());
    std::error_code ec;
    fs::rename(tmp, path, ec);
    BULWARK_CHECK(!ec, "write_file_atomically: cannot rename '{}' to '{}': {}", tmp.string(),
                  path.string(), ec.message());
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
