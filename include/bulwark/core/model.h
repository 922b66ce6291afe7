#pragma once
/// @file
/// `Model`: any classifier that maps a batch of inputs to logits [N, K].

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace bulwark {

/// A type-erased classifier: a `torch::nn` module holder, a TorchScript module loaded from a
/// file, or a callable plus its parameters. Copies share the same underlying model.
///
/// Attacks and evaluation put the model in eval mode for their duration (see EvalModeGuard)
/// and never touch the parameters' `.grad`.
class Model {
 public:
  using ForwardFn = std::function<at::Tensor(const at::Tensor&)>;

  /// Wraps a module holder such as `bulwark::SmallCNN` or `torch::nn::Sequential`; its
  /// `forward(Tensor)` must return logits [N, K].
  template <typename ModuleType>
  Model(torch::nn::ModuleHolder<ModuleType> holder, std::string name = "")  // NOLINT
      : Model(std::static_pointer_cast<torch::nn::Module>(holder.ptr()),
              [module = holder.ptr()](const at::Tensor& x) -> at::Tensor {
                return module->forward(x);
              },
              std::move(name)) {}

  /// Wraps a module and the function that runs it. @throws Error when either is null.
  Model(std::shared_ptr<torch::nn::Module> module, ForwardFn forward, std::string name = "");

  /// A stateless callable with the tensors it depends on (used for `parameters()` and
  /// `device()`); train/eval mode is recorded but has no effect on it.
  static Model from_function(ForwardFn forward, std::vector<at::Tensor> parameters,
                             std::string name = "function");

  /// A model computed from other models (an ensemble, a defended model): `forward` calls
  /// them; train/eval mode, `to()` and `parameters()` pass through to every part, the device
  /// is the first part's. @throws Error when `parts` is empty or `forward` is empty.
  static Model composite(std::vector<Model> parts, ForwardFn forward,
                         std::string name = "composite");
  /// Loads a TorchScript module (e.g. saved by `torch.jit.save` in Python) onto `device`.
  /// @throws Error when the file is missing or is not a TorchScript archive.
  static Model load_torchscript(const std::filesystem::path& path,
                                c10::Device device = c10::Device(c10::kCPU));
  /// Loads a TorchScript module from bytes in memory (e.g. decrypted from a sealed file),
  /// read in place; `name` is the model's name in reports.
  /// @throws Error when the bytes are not a TorchScript archive.
  static Model load_torchscript_bytes(std::string_view bytes, std::string name,
                                      c10::Device device = c10::Device(c10::kCPU));

  /// Runs the model on `x` [N, ...]. @throws Error when the output is not logits [N, K].
  at::Tensor forward(const at::Tensor& x) const;
  at::Tensor operator()(const at::Tensor& x) const { return forward(x); }

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const;

  /// All parameters (trainable or not), in a stable order.
  std::vector<at::Tensor> parameters() const;
  /// The device of the first parameter, or CPU for a model without parameters.
  c10::Device device() const;
  /// Moves the parameters and buffers to `device`.
  void to(c10::Device device);

  /// The wrapped `torch::nn::Module`, or null for TorchScript and function models.
  std::shared_ptr<torch::nn::Module> module() const;
  /// A short name for reports ("SmallCNN", "torchscript:model.pt", ...).
  const std::string& name() const;

  struct Impl;

 private:
  explicit Model(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

/// RAII: puts a model in eval mode and restores its previous mode on destruction.
class EvalModeGuard {
 public:
  explicit EvalModeGuard(Model& model);
  ~EvalModeGuard();
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  Model& model_;
  bool was_training_;
};

}  // namespace bulwark
