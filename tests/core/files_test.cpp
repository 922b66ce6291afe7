#include "bulwark/core/files.h"

#include <fstream>

#include "data/data_test_util.h"
#include "test_util.h"

namespace bulwark {
namespace {
namespace fs = std::filesystem;

class FilesTest : public testing::SeededTest {
 protected:
  testing::TempDir temp_;
  const fs::path& dir_ = temp_.path();
};

TEST_F(FilesTest, WritesAndReplaces) {
  const auto path = dir_ / "report.json";
  write_text_atomically(path, "first");
  EXPECT_EQ(testing::read_file(path), "first");
  write_text_atomically(path, "second");
  EXPECT_EQ(testing::read_file(path), "second");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(FilesTest, AFailingWriterLeavesTheOldFileAndNoTemporary) {
  const auto path = dir_ / "model.pt";
  write_text_atomically(path, "good");
  EXPECT_THROW(write_file_atomically(path,
                                     [](const fs::path& tmp) {
                                       std::ofstream(tmp) << "half-written";
                                       throw std::runtime_error("disk on fire");
                                     }),
               std::runtime_error);
  EXPECT_EQ(testing::read_file(path), "good");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(FilesTest, RejectsMissingDirectory) {
  EXPECT_BULWARK_ERROR(write_text_atomically(dir_ / "missing" / "x.json", "x"), "missing",
                       "does not exist");
  EXPECT_BULWARK_ERROR(write_text_atomically(dir_, "x"), "is a directory");
}

}  // namespace
}  // namespace bulwark
