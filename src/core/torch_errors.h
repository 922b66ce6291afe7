#pragma once
// Private: LibTorch's exceptions as one-line reasons for bulwark::Error messages.

#include <exception>
#include <string>

namespace bulwark::detail {

/// The message of an exception LibTorch threw: a c10::Error without its backtrace; anything
/// else (the TorchScript compiler's ErrorReport on code it cannot parse, which spans lines) by
/// its first line.
std::string torch_error_reason(const std::exception& e);

}  // namespace bulwark::detail
