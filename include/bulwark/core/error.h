#pragma once
/// @file
/// The one exception type Bulwark throws.

#include <stdexcept>
#include <string>

namespace bulwark {

/// Thrown by every public Bulwark function on bad input or failed I/O. `what()` names the
/// function and argument, what was expected and what came, e.g.
/// `"project_step: eps must be >= 0, got -0.1"`.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace bulwark
