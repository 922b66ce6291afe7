// `bulwark info`: the LibTorch version, CUDA support, threads and op kernels.
#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <torch/cuda.h>
#include <torch/torch.h>
#include <torch/version.h>

#include "bulwark/bulwark.h"
#include "cli/commands.h"

namespace bulwark::cli {
namespace {

bool has_kernel(const char* op, const char* overload, c10::DispatchKey key) {
  const auto handle = c10::Dispatcher::singleton().findSchema({op, overload});
  return handle.has_value() && handle->hasKernelForDispatchKey(key);
}

void run_info(const GlobalOptions&) {
  const bool torch_cuda = has_kernel("aten::add", "Tensor", c10::DispatchKey::CUDA);
  const bool gpu = torch::cuda::is_available();
  fmt::print("bulwark             {}\n", BULWARK_VERSION_STRING);
  fmt::print("LibTorch            {}\n", TORCH_VERSION);
  fmt::print("LibTorch CUDA       {}\n", torch_cuda ? "compiled in" : "not compiled in");
  fmt::print("Bulwark CUDA        {}\n", BULWARK_WITH_CUDA ? "compiled in" : "not compiled in");
  fmt::print("GPU visible         {}\n",
             gpu ? fmt::format("yes ({} device(s))", torch::cuda::device_count()) : "no");
  fmt::print("threads             {} intra-op, {} inter-op\n", at::get_num_threads(),
             at::get_num_interop_threads());
  fmt::print("op kernels          project_step: CPU {}, CUDA {}\n",
             has_kernel("bulwark::project_step", "", c10::DispatchKey::CPU) ? "yes" : "no",
             BULWARK_WITH_CUDA ? "yes" : "reference fallback");
  fmt::print("                    patch_composite: CPU {}, CUDA {}\n",
             has_kernel("bulwark::patch_composite", "", c10::DispatchKey::CPU) ? "yes" : "no",
             BULWARK_WITH_CUDA ? "yes" : "reference fallback");
}

}  // namespace

Command add_info_command(CLI::App& app, const GlobalOptions& global) {
  auto* cmd = app.add_subcommand("info", "Print the LibTorch version, CUDA support and threads");
  return {cmd, [&global] { run_info(global); }};
}

}  // namespace bulwark::cli
