#pragma once
// The fuzz targets: one function per parser of outside bytes. Each takes arbitrary bytes,
// hands them to the parser the way a user's file would reach it, and returns 0. A
// bulwark::Error (the parser refusing the input) is the expected outcome for bad bytes; any
// other exception, crash, leak or sanitizer report is a finding. The libFuzzer executables of
// fuzz/CMakeLists.txt and the corpus replay in the unit tests call the same functions.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace bulwark::fuzz {

using Target = int (*)(const uint8_t* data, size_t size);

int idx_file(const uint8_t* data, size_t size);          ///< read_idx (plain or gzip)
int cifar10_file(const uint8_t* data, size_t size);      ///< read_cifar10_batches
int png_file(const uint8_t* data, size_t size);          ///< read_png
int model_file(const uint8_t* data, size_t size);        ///< load_model (checkpoint, TorchScript)
int model_spec(const uint8_t* data, size_t size);        ///< ModelSpec::from_json
int detector_file(const uint8_t* data, size_t size);     ///< LearnedDetector::load
int sealed_file(const uint8_t* data, size_t size);       ///< unseal, inspect_sealed, sign
int key_file(const uint8_t* data, size_t size);          ///< SecretKey/PublicKey/SigningKey::read

struct NamedTarget {
  std::string name;  ///< also the corpus directory: fuzz/corpus/<name>
  Target run;
};
/// Every target, by name.
const std::vector<NamedTarget>& targets();

/// Writes the bytes to a file of this process's scratch directory (in /dev/shm when it exists)
/// and returns its path; the same name is reused by every call.
std::filesystem::path scratch_file(const uint8_t* data, size_t size, const std::string& name);

/// The fixed keys of the sealed-file target (its seed corpus is sealed with them).
std::vector<uint8_t> fuzz_secret_key_bytes();

}  // namespace bulwark::fuzz
