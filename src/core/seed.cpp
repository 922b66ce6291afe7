#include "bulwark/core/seed.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "core/check.h"

namespace bulwark {

void manual_seed(uint64_t seed) {
  // torch::manual_seed seeds the CPU generator and, when CUDA is available, every GPU's.
  torch::manual_seed(seed);
}

at::Generator make_generator(uint64_t seed, c10::Device device) {
  if (device.is_cpu()) return at::make_generator<at::CPUGeneratorImpl>(seed);
  BULWARK_CHECK(device.is_cuda() && torch::cuda::is_available(),
                "make_generator: no generator for device {} (CUDA available: {})", device.str(),
                torch::cuda::is_available());
  auto generator = at::globalContext().defaultGenerator(device).clone();
  generator.set_current_seed(seed);
  return generator;
}

uint64_t derive_seed(uint64_t seed, uint64_t stream) {
  // SplitMix64 finaliser (Steele et al. 2014) over the combined value.
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace bulwark
