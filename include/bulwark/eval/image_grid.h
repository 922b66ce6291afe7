#pragma once
/// @file
/// A PNG grid of clean and adversarial images with the model's predictions, for reports.

#include <ATen/core/Tensor.h>

#include <filesystem>

namespace bulwark {

/// Writes a PNG (atomically) with one row per sample: the clean image, the adversarial image,
/// and their difference magnified to the full range, each scaled up `scale` times, with the
/// predicted class above the clean and adversarial images (green when it equals `labels`, red
/// otherwise). Images are [N, C, H, W] in [0, 1] with C = 1 (grey) or 3 (RGB); predictions
/// and labels are [N] integers < 100.
/// @throws Error on shape, dtype or range mismatches, N = 0, scale < 1, or an unwritable path.
void write_image_grid(const std::filesystem::path& path, const at::Tensor& clean,
                      const at::Tensor& adversarial, const at::Tensor& clean_predictions,
                      const at::Tensor& adversarial_predictions, const at::Tensor& labels,
                      int64_t scale = 3);

}  // namespace bulwark
