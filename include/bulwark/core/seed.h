#pragma once
/// @file
/// Seeding: every random choice in Bulwark takes a seed or an `at::Generator`.

#include <ATen/core/Generator.h>
#include <c10/core/Device.h>

#include <cstdint>

namespace bulwark {

/// Seeds LibTorch's global CPU generator and, where present, every CUDA generator.
void manual_seed(uint64_t seed);

/// A fresh generator for `device` seeded with `seed`: the same seed gives the same stream.
at::Generator make_generator(uint64_t seed, c10::Device device = c10::Device(c10::kCPU));

/// Mixes a seed with a stream index (for example an epoch number) into a new seed
/// (SplitMix64), so that derived streams are independent and reproducible.
uint64_t derive_seed(uint64_t seed, uint64_t stream);

}  // namespace bulwark
