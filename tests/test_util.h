#pragma once
// Shared test helpers: a seeding fixture, CUDA skipping, error-message matching.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "bulwark/core/error.h"
#include "bulwark/core/seed.h"
#include "test_paths.h"

namespace bulwark::testing {

/// Every test starts from the same global random state.
class SeededTest : public ::testing::Test {
 protected:
  void SetUp() override { bulwark::manual_seed(0); }
};

/// Tests whose name ends in _CUDA call this first: skipped, not failed, without a GPU.
#define BULWARK_SKIP_WITHOUT_CUDA()                                   \
  do {                                                                \
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

/// Expects `statement` to throw bulwark::Error whose message contains every given fragment.
#define EXPECT_BULWARK_ERROR(statement, ...)                                         \
  do {                                                                               \
    try {                                                                            \
      statement;                                                                     \
      ADD_FAILURE() << "expected bulwark::Error from: " #statement;                  \
    } catch (const ::bulwark::Error& e) {                                            \
      for (const std::string fragment : {__VA_ARGS__}) {                             \
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)           \
            << "message '" << e.what() << "' lacks '" << fragment << "'";           \
      }                                                                              \
    }                                                                                \
  } while (0)

}  // namespace bulwark::testing
