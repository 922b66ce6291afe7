// A libFuzzer entry point for the target named by BULWARK_FUZZ_TARGET (fuzz/CMakeLists.txt
// builds one executable per target).
#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include "fuzz/targets.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  at::set_num_threads(1);
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return bulwark::fuzz::BULWARK_FUZZ_TARGET(data, size);
}
