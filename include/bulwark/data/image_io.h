#pragma once
/// @file
/// Reading and writing single images as PNG: masks for sticker attacks in, patches and
/// stickers out.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>

namespace bulwark {

/// Reads a PNG (grey, grey + alpha, RGB, RGBA, palette; 8 or 16 bit) as a float tensor
/// [C, H, W] in [0, 1] with C = 1 for grey images and 3 for colour ones; an alpha channel is
/// dropped.
/// @throws Error when the file cannot be read or is not a valid PNG.
at::Tensor read_png(const std::filesystem::path& path);

/// Writes `image` [C, H, W] (C = 1 or 3, values in [0, 1]) as an 8-bit PNG, atomically, each
/// pixel scaled up to a `scale`×`scale` block. With `alpha` [H, W] in [0, 1] the PNG gets an
/// alpha channel (transparent where alpha is 0): a round patch keeps its shape.
/// @throws Error on shape or range mismatches, scale < 1, or an unwritable path.
void write_png(const std::filesystem::path& path, const at::Tensor& image,
               const at::Tensor& alpha = {}, int64_t scale = 1);

}  // namespace bulwark
