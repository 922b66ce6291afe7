// Benchmark entry point: sets LibTorch's thread count (all cores unless BULWARK_THREADS says
// otherwise; LibTorch's own default may be 1) and records it in the JSON context.
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "bulwark/config.h"

int main(int argc, char** argv) {
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (const char* env = std::getenv("BULWARK_THREADS"); env != nullptr && std::atoi(env) > 0) {
    threads = std::atoi(env);
  }
  at::set_num_threads(threads);
  benchmark::AddCustomContext("torch_threads", std::to_string(at::get_num_threads()));
  benchmark::AddCustomContext("bulwark_version", BULWARK_VERSION_STRING);
  benchmark::AddCustomContext("bulwark_cuda_kernels", BULWARK_WITH_CUDA ? "yes" : "no");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
