#pragma once
// Private helpers of the security area: libsodium's one-time initialisation, and reading small
// files of outside bytes with a size limit.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace bulwark::detail {

/// Initialises libsodium once (thread-safe). @throws Error when it cannot start.
void ensure_sodium();

/// The whole file, read straight into one string (no second copy of a large model), refusing
/// files longer than `max_bytes` and files that change length while they are read.
/// @throws Error naming `what` and the path when it is missing, unreadable or too long.
std::string read_file(const std::filesystem::path& path, size_t max_bytes, const char* what);

/// Writes `bytes` atomically with the given permission bits (e.g. 0600 for secret keys).
void write_file_bytes(const std::filesystem::path& path, const uint8_t* data, size_t size,
                      std::filesystem::perms permissions);

/// Lower-case hex of the bytes.
std::string to_hex(const uint8_t* data, size_t size);

}  // namespace bulwark::detail
