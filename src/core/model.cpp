#include "bulwark/core/model.h"

#include <caffe2/serialize/read_adapter_interface.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "core/check.h"
#include "core/torch_errors.h"

namespace bulwark {

struct Model::Impl {
  virtual ~Impl() = default;
  virtual at::Tensor forward(const at::Tensor& x) = 0;
  virtual void train(bool on) = 0;
  virtual bool is_training() const = 0;
  virtual std::vector<at::Tensor> parameters() const = 0;
  virtual std::vector<at::Tensor> buffers() const = 0;
  virtual void to(c10::Device device) = 0;
  virtual std::shared_ptr<torch::nn::Module> module() const { return nullptr; }
  std::string name;
};

namespace {

struct ModuleModel final : Model::Impl {
  std::shared_ptr<torch::nn::Module> module_;
  Model::ForwardFn forward_;

  at::Tensor forward(const at::Tensor& x) override { return forward_(x); }
  void train(bool on) override { module_->train(on); }
  bool is_training() const override { return module_->is_training(); }
  std::vector<at::Tensor> parameters() const override { return module_->parameters(); }
  std::vector<at::Tensor> buffers() const override { return module_->buffers(); }
  void to(c10::Device device) override { module_->to(device); }
  std::shared_ptr<torch::nn::Module> module() const override { return module_; }
};

struct ScriptModel final : Model::Impl {
  torch::jit::Module module_;

  at::Tensor forward(const at::Tensor& x) override {
    const auto output = module_.forward({x});
    BULWARK_CHECK(output.isTensor(),
                  "Model::forward: the TorchScript model '{}' returned {} instead of a tensor of "
                  "logits",
                  name, output.tagKind());
    return output.toTensor();
  }
  void train(bool on) override { module_.train(on); }
  bool is_training() const override { return module_.is_training(); }
  std::vector<at::Tensor> parameters() const override {
    std::vector<at::Tensor> result;
    for (const auto& p : module_.parameters()) result.push_back(p);
    return result;
  }
  std::vector<at::Tensor> buffers() const override {
    std::vector<at::Tensor> result;
    for (const auto& b : module_.buffers()) result.push_back(b);
    return result;
  }
  void to(c10::Device device) override { module_.to(device); }
};

struct FunctionModel final : Model::Impl {
  Model::ForwardFn forward_;
  std::vector<at::Tensor> parameters_;
  bool training_ = false;

  at::Tensor forward(const at::Tensor& x) override { return forward_(x); }
  void train(bool on) override { training_ = on; }
  bool is_training() const override { return training_; }
  std::vector<at::Tensor> parameters() const override { return parameters_; }
  std::vector<at::Tensor> buffers() const override { return {}; }
  void to(c10::Device device) override {
    BULWARK_CHECK(parameters_.empty() || parameters_.front().device() == device,
                  "Model::to: the function model '{}' cannot be moved to {}: move the tensors it "
                  "captures instead",
                  name, device.str());
  }
};

// A model built on other models (an ensemble, a defended model): mode, parameters and device
// are theirs.
struct CompositeModel final : Model::Impl {
  std::vector<Model> parts_;
  Model::ForwardFn forward_;

  at::Tensor forward(const at::Tensor& x) override { return forward_(x); }
  void train(bool on) override {
    for (auto& part : parts_) part.train(on);
  }
  bool is_training() const override { return parts_.front().is_training(); }
  std::vector<at::Tensor> parameters() const override {
    std::vector<at::Tensor> result;
    for (const auto& part : parts_) {
      const auto p = part.parameters();
      result.insert(result.end(), p.begin(), p.end());
    }
    return result;
  }
  std::vector<at::Tensor> buffers() const override { return {}; }
  void to(c10::Device device) override {
    for (auto& part : parts_) part.to(device);
  }
};

// The name a user writes for a module's class: "bulwark::SmallCNNImpl" -> "SmallCNN",
// "torch::nn::SequentialImpl" -> "Sequential".
std::string readable_module_name(const std::string& cpp_name) {
  const auto scope = cpp_name.rfind("::");
  auto name = scope == std::string::npos ? cpp_name : cpp_name.substr(scope + 2);
  constexpr std::string_view kImpl = "Impl";
  if (name.size() > kImpl.size() && name.ends_with(kImpl)) name.resize(name.size() - kImpl.size());
  return name;
}

}  // namespace

Model::Model(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Model::Model(std::shared_ptr<torch::nn::Module> module, ForwardFn forward, std::string name) {
  BULWARK_CHECK(module != nullptr, "Model: the module is null");
  BULWARK_CHECK(static_cast<bool>(forward), "Model: the forward function is empty");
  auto impl = std::make_shared<ModuleModel>();
  impl->name = name.empty() ? readable_module_name(module->name()) : std::move(name);
  impl->module_ = std::move(module);
  impl->forward_ = std::move(forward);
  impl_ = std::move(impl);
}

Model Model::from_function(ForwardFn forward, std::vector<at::Tensor> parameters,
                           std::string name) {
  BULWARK_CHECK(static_cast<bool>(forward), "Model::from_function: the function is empty");
  auto impl = std::make_shared<FunctionModel>();
  impl->name = std::move(name);
  impl->forward_ = std::move(forward);
  impl->parameters_ = std::move(parameters);
  return Model(std::move(impl));
}

Model Model::composite(std::vector<Model> parts, ForwardFn forward, std::string name) {
  BULWARK_CHECK(!parts.empty(), "Model::composite: needs at least one model");
  BULWARK_CHECK(static_cast<bool>(forward), "Model::composite: the function is empty");
  auto impl = std::make_shared<CompositeModel>();
  impl->name = std::move(name);
  impl->parts_ = std::move(parts);
  impl->forward_ = std::move(forward);
  return Model(std::move(impl));
}

namespace {

// Runs a TorchScript load; whatever LibTorch throws on bad bytes (c10::Error, and the
// compiler's ErrorReport for code it cannot parse) becomes one bulwark::Error.
template <typename Load>
torch::jit::Module load_script_module(Load&& load, const std::string& name) {
  try {
    return load();
  } catch (const std::exception& e) {
    throw Error(fmt::format("Model::load_torchscript: '{}' is not a loadable TorchScript model: {}",
                            name, detail::torch_error_reason(e)));
  }
}

}  // namespace

Model Model::load_torchscript(const std::filesystem::path& path, c10::Device device) {
  BULWARK_CHECK(std::filesystem::is_regular_file(path),
                "Model::load_torchscript: '{}' does not exist or is not a file", path.string());
  auto impl = std::make_shared<ScriptModel>();
  impl->module_ = load_script_module([&] { return torch::jit::load(path.string(), device); },
                                     path.string());
  impl->name = "torchscript:" + path.filename().string();
  return Model(std::move(impl));
}

namespace {

// LibTorch's reader over bytes in memory, without a copy.
class MemoryReadAdapter final : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit MemoryReadAdapter(std::string_view bytes) : bytes_(bytes) {}
  size_t size() const override { return bytes_.size(); }
  size_t read(uint64_t pos, void* buf, size_t n, const char* /*what*/) const override {
    if (pos >= bytes_.size()) return 0;
    n = std::min<size_t>(n, bytes_.size() - static_cast<size_t>(pos));
    std::memcpy(buf, bytes_.data() + pos, n);
    return n;
  }

 private:
  std::string_view bytes_;
};

}  // namespace

Model Model::load_torchscript_bytes(std::string_view bytes, std::string name,
                                    c10::Device device) {
  auto impl = std::make_shared<ScriptModel>();
  impl->module_ = load_script_module(
      [&] { return torch::jit::load(std::make_shared<MemoryReadAdapter>(bytes), device); }, name);
  impl->name = std::move(name);
  return Model(std::move(impl));
}

at::Tensor Model::forward(const at::Tensor& x) const {
  BULWARK_CHECK(x.defined() && x.dim() >= 1,
                "Model::forward: input must be a batch [N, ...], got shape {}",
                detail::shape_string(x));
  auto logits = impl_->forward(x);
  BULWARK_CHECK(logits.defined() && logits.dim() == 2 && logits.size(0) == x.size(0),
                "Model::forward: '{}' must return logits [N, K] with N = {}, got shape {}",
                impl_->name, x.size(0), detail::shape_string(logits));
  return logits;
}

void Model::train(bool on) { impl_->train(on); }
bool Model::is_training() const { return impl_->is_training(); }
std::vector<at::Tensor> Model::parameters() const { return impl_->parameters(); }

c10::Device Model::device() const {
  if (const auto* composite = dynamic_cast<const CompositeModel*>(impl_.get())) {
    return composite->parts_.front().device();
  }
  for (const auto& p : impl_->parameters()) return p.device();
  for (const auto& b : impl_->buffers()) return b.device();
  return c10::Device(c10::kCPU);
}

void Model::to(c10::Device device) { impl_->to(device); }
std::shared_ptr<torch::nn::Module> Model::module() const { return impl_->module(); }
const std::string& Model::name() const { return impl_->name; }

EvalModeGuard::EvalModeGuard(Model& model) : model_(model), was_training_(model.is_training()) {
  model_.eval();
}

EvalModeGuard::~EvalModeGuard() { model_.train(was_training_); }

}  // namespace bulwark
