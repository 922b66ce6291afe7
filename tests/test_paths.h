#pragma once
// Where the tests find this build's files. The paths are absolute, so they live in one generated
// source file (tests/test_paths.cpp.in) instead of on every test's compiler command line: a fresh
// clone then misses ccache on that one small file only.
#include <string>

namespace bulwark::testing {

/// tests/data/files/<name> in the source tree (or the directory itself for an empty name).
std::string test_data(const std::string& name = "");
/// The bulwark executable of this build.
std::string cli_path();
/// fuzz/corpus in the source tree.
std::string fuzz_corpus_dir();
/// The Python the project uses (empty when none was found) and the PRV accountant's reference.
std::string python_path();
std::string dp_accounting_reference();
/// Where the ctest fixtures write the end-to-end tests' reference models.
std::string reference_models_dir();

}  // namespace bulwark::testing
