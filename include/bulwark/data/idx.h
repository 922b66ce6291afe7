#pragma once
/// @file
/// The IDX format of MNIST and Fashion-MNIST (LeCun et al.), plain or gzip-compressed.

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <string>

#include "bulwark/data/dataset.h"

namespace bulwark {

/// Reads an IDX file of unsigned bytes (type code 0x08) into a uint8 tensor of the shape its
/// header gives. Gzip-compressed files are recognised by their content, not their name.
/// @throws Error naming the file when it is missing, its magic number is wrong, its type code
/// is not 0x08, it has no or too many dimensions, or it ends before its header says it should.
at::Tensor read_idx(const std::filesystem::path& path);

enum class Split { Train, Test };

/// Loads MNIST-format images and labels from `directory` (the four standard file names, each
/// with or without ".gz"): images as float [N, 1, 28, 28] in [0, 1], labels as int64 [N].
/// @throws Error naming the file on any missing or malformed file, or when the image and label
/// counts differ.
Dataset load_mnist_format(const std::filesystem::path& directory, Split split,
                          const std::string& name = "mnist");

/// `/usr/share/datasets/fashion-mnist`, or $BULWARK_FASHION_MNIST when set.
std::filesystem::path default_fashion_mnist_dir();

/// Fashion-MNIST (Xiao et al. 2017), by default from Debian's dataset-fashion-mnist package.
Dataset load_fashion_mnist(Split split,
                           const std::filesystem::path& directory = default_fashion_mnist_dir());

}  // namespace bulwark
