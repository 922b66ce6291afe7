#pragma once
// Runs the bulwark executable as a user would: a shell command line, stdout and stderr together.
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <string>

#include "data/data_test_util.h"
#include "test_paths.h"

namespace bulwark::testing {

struct RunResult {
  int status = -1;
  std::string output;
};

inline RunResult run_cli(const std::string& args) {
  const std::string command = cli_path() + " " + args + " 2>&1";
  RunResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer{};
  while (const auto n = std::fread(buffer.data(), 1, buffer.size(), pipe)) {
    result.output.append(buffer.data(), n);
  }
  const int status = ::pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

inline size_t count_lines(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

// A toy MNIST-format data set of 200 images in `dir`, both splits: the class is the
// brightness decile of the image.
inline void write_toy_mnist(const TempDir& dir) {
  const int n = 200;
  std::vector<uint8_t> images = {0, 0, 8, 3, 0, 0, 0, n, 0, 0, 0, 28, 0, 0, 0, 28};
  std::vector<uint8_t> labels = {0, 0, 8, 1, 0, 0, 0, n};
  for (int i = 0; i < n; ++i) {
    labels.push_back(static_cast<uint8_t>(i % 10));
    images.insert(images.end(), 28 * 28, static_cast<uint8_t>(10 + 25 * (i % 10)));
  }
  for (const auto* split : {"train", "t10k"}) {
    write_bytes(dir / (std::string(split) + "-images-idx3-ubyte"), images);
    write_bytes(dir / (std::string(split) + "-labels-idx1-ubyte"), labels);
  }
}

}  // namespace bulwark::testing
