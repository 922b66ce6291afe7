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

/// Writes a uint8 tensor of 1 to 4 dimensions as an uncompressed IDX file, atomically (see
/// write_file_atomically).
/// @throws Error when the tensor is not uint8, has no or more than 4 dimensions, or the file
/// cannot be written.
void write_idx(const std::filesystem::path& path, const at::Tensor& bytes);

/// Writes `data` as the two MNIST-format files of `split` in `directory` (uncompressed), so that
/// load_mnist_format reads it back: images [N, 1, H, W] in [0, 1] are stored as round(255 x),
/// which reproduces bitwise any image that was read from such a file.
/// @throws Error when the images are not [N, 1, H, W] in [0, 1], a label is outside [0, 10), or
/// the directory does not exist.
void save_mnist_format(const Dataset& data, const std::filesystem::path& directory, Split split);

/// `/usr/share/datasets/fashion-mnist`, or $BULWARK_FASHION_MNIST when set.
std::filesystem::path default_fashion_mnist_dir();

/// Fashion-MNIST (Xiao et al. 2017), by default from Debian's dataset-fashion-mnist package.
Dataset load_fashion_mnist(Split split,
                           const std::filesystem::path& directory = default_fashion_mnist_dir());

}  // namespace bulwark
