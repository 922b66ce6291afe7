#pragma once
// Private: libpng's simplified write API behind one call, shared by write_png and the image
// grid writer.

#include <cstdint>
#include <filesystem>
#include <vector>

namespace bulwark::detail {

/// Writes `bytes` (rows of `width` pixels of `channels` 8-bit values: 1 grey, 2 grey + alpha,
/// 3 RGB, 4 RGBA) to `path` as PNG, not atomically (callers wrap it). @throws Error.
void write_png_bytes(const std::filesystem::path& path, int64_t width, int64_t height,
                     int channels, const std::vector<uint8_t>& bytes);

}  // namespace bulwark::detail
