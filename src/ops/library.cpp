// Owns the `bulwark` operator namespace; each op declares its schema in a fragment of its own.
#include <torch/library.h>

TORCH_LIBRARY(bulwark, m) { static_cast<void>(m); }
