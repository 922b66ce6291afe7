#pragma once
/// @file
/// The CIFAR-10 binary format (Krizhevsky 2009): records of 1 label byte + 3072 image bytes.

#include <filesystem>
#include <vector>

#include "bulwark/data/dataset.h"
#include "bulwark/data/idx.h"

namespace bulwark {

/// Reads CIFAR-10 binary batch files: images float [N, 3, 32, 32] in [0, 1], labels int64 [N].
/// @throws Error naming the file when it is missing, empty, not a whole number of records, or
/// holds a label outside [0, 10).
Dataset read_cifar10_batches(const std::vector<std::filesystem::path>& files);

/// `data_batch_1.bin` … `data_batch_5.bin` (train) or `test_batch.bin` (test) from `directory`.
Dataset load_cifar10(const std::filesystem::path& directory, Split split);

/// Writes `data` in the CIFAR-10 binary format into `directory` so that load_cifar10 reads it
/// back: the train split as five batch files of near-equal size (as the original's 10,000
/// each), the test split as `test_batch.bin`; images [N, 3, 32, 32] in [0, 1] are stored as
/// round(255 x), which reproduces bitwise any image read from such a file. Each file is
/// written atomically.
/// @throws Error when the images are not [N, 3, 32, 32] in [0, 1], a label is outside [0, 10),
/// the train split has fewer than 5 images, or the directory does not exist.
void save_cifar10(const Dataset& data, const std::filesystem::path& directory, Split split);

}  // namespace bulwark
