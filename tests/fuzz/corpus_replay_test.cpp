// Replays the committed fuzz corpus (seeds, everything the fuzzers kept, and every crash they
// ever found) through the same targets the libFuzzer executables run: each input must be
// parsed or refused with bulwark::Error, never crash or throw anything else.
#include <filesystem>
#include <fstream>
#include <iterator>

#include "fuzz/targets.h"
#include "test_util.h"

namespace bulwark {
namespace {
namespace fs = std::filesystem;

class FuzzCorpusTest : public ::testing::TestWithParam<fuzz::NamedTarget> {};

TEST_P(FuzzCorpusTest, EveryInputIsParsedOrRefusedCleanly) {
  const auto& target = GetParam();
  const fs::path dir = fs::path(testing::fuzz_corpus_dir()) / target.name;
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  size_t inputs = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                     std::istreambuf_iterator<char>());
    EXPECT_NO_THROW(target.run(bytes.data(), bytes.size())) << entry.path();
    ++inputs;
  }
  // Seeds at least; the fuzzers' runs add what they found.
  EXPECT_GE(inputs, 1u) << dir;
  std::cout << target.name << ": " << inputs << " inputs replayed\n";
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzCorpusTest, ::testing::ValuesIn(fuzz::targets()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace bulwark
