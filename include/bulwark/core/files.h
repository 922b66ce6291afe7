#pragma once
/// @file
/// Files written so that a crash or an error never leaves a half-written one behind.

#include <filesystem>
#include <functional>
#include <string_view>

namespace bulwark {

/// Calls `write(tmp)` with a temporary path next to `path`, flushes it to the disk (fsync),
/// then renames the temporary file onto `path` (atomic on POSIX file systems). If `write`
/// throws, the temporary file is removed, `path` is left as it was, and the exception
/// propagates. A process killed mid-write leaves its temporary file; the next successful write
/// of the same path removes it (tests/core/crash_safety_test.cpp kills writers at random points).
/// @throws Error when the directory of `path` does not exist or the rename fails.
void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(const std::filesystem::path& tmp)>& write);

/// Writes `text` to `path` atomically (see write_file_atomically).
void write_text_atomically(const std::filesystem::path& path, std::string_view text);

}  // namespace bulwark
