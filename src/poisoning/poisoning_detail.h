#pragma once
// Private to the poisoning area: checks shared by the attacks and the assembly of their result.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "bulwark/core/seed.h"
#include "bulwark/poisoning/poisoned_dataset.h"

namespace bulwark::detail {

/// @throws Error naming `what` unless rate is in [0, 1].
void check_rate(double rate, const char* what);

/// round(rate × n): how many samples a rate asks for.
int64_t count_for(double rate, int64_t n);

/// `count` of the int64 `candidates` drawn without replacement with `generator`, ascending.
at::Tensor choose(const at::Tensor& candidates, int64_t count, at::Generator& generator);

/// The poisoned copy of `data`: labels at `chosen` replaced by `labels`, and images at `chosen`
/// by `images` when given. Everything else is copied bit for bit.
PoisonedDataset assemble(const Dataset& data, const at::Tensor& chosen, const at::Tensor& labels,
                         const at::Tensor& images, const std::string& how);

}  // namespace bulwark::detail
