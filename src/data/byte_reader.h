#pragma once
// Reads a whole file, gunzipping it when it is gzip-compressed (zlib's gzread passes plain
// files through unchanged), with errors that name the file.

#include <cstdint>
#include <filesystem>
#include <string_view>
#include <vector>

namespace bulwark::detail {

/// Streams a file's (decompressed) bytes. @throws Error when it cannot be opened or read.
class ByteReader {
 public:
  ByteReader(const std::filesystem::path& path, std::string_view where);
  ~ByteReader();
  ByteReader(const ByteReader&) = delete;
  ByteReader& operator=(const ByteReader&) = delete;

  /// Reads up to `size` bytes; returns how many were read (fewer only at end of file).
  size_t read(void* data, size_t size);
  /// Reads exactly `size` bytes. @throws Error saying how many of `what` were missing.
  void read_exact(void* data, size_t size, std::string_view what);
  /// True when no byte is left.
  bool at_end();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::string where_;
  void* file_ = nullptr;
};

}  // namespace bulwark::detail
