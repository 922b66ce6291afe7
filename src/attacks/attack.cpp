#include "bulwark/attacks/attack.h"

#include <torch/torch.h>

#include "core/check.h"

namespace bulwark {

at::Tensor attack_succeeded(const at::Tensor& logits, const at::Tensor& y, bool targeted) {
  const auto predicted = logits.argmax(1);
  return targeted ? predicted.eq(y) : predicted.ne(y);
}

void finish_attack_result(AttackResult& result, Model& model, const at::Tensor& x,
                          const at::Tensor& y, bool targeted) {
  torch::NoGradGuard no_grad;
  const auto logits = model.forward(result.adversarial);
  result.success = attack_succeeded(logits, y, targeted);
  const auto delta = (result.adversarial - x).to(at::kDouble);
  result.linf = per_sample_norm(delta, Norm::Linf);
  result.l2 = per_sample_norm(delta, Norm::L2);
}

at::Tensor run_in_batches(Attack& attack, Model& model, const at::Tensor& x, const at::Tensor& y,
                          int64_t batch_size) {
  BULWARK_CHECK(batch_size >= 1, "{}: batch_size must be >= 1, got {}", attack.name(),
                batch_size);
  BULWARK_CHECK(x.defined() && y.defined() && x.dim() >= 1 && y.dim() == 1 &&
                    x.size(0) == y.size(0),
                "{}: needs x [N, ...] and y [N], got {} and {}", attack.name(),
                x.defined() ? detail::shape_string(x) : "undefined",
                y.defined() ? detail::shape_string(y) : "undefined");
  if (x.size(0) == 0) return x.clone();
  std::vector<at::Tensor> parts;
  for (int64_t begin = 0; begin < x.size(0); begin += batch_size) {
    parts.push_back(attack.run(model, x.slice(0, begin, begin + batch_size),
                               y.slice(0, begin, begin + batch_size))
                        .adversarial);
  }
  return at::cat(parts);
}

AttackResult Attack::run(Model& model, const at::Tensor& x, const at::Tensor& y) {
  const std::string where = name();
  detail::check_float_tensor(where, "x", x, 2);
  box().check_contains(where, "x", x);
  BULWARK_CHECK(y.defined(), "{}: y is an undefined tensor", where);
  BULWARK_CHECK(y.device() == x.device(), "{}: y is on {} but x is on {}", where,
                y.device().str(), x.device().str());
  BULWARK_CHECK(model.device() == x.device(),
                "{}: the model '{}' is on {} but x is on {}; move one of them", where,
                model.name(), model.device().str(), x.device().str());
  EvalModeGuard eval_mode(model);
  int64_t classes = 0;
  if (x.size(0) > 0) {
    torch::NoGradGuard no_grad;
    classes = model.forward(x.slice(0, 0, 1)).size(1);
  }
  detail::check_labels(where, targeted() ? "y (target classes)" : "y (true classes)", y,
                       x.size(0), std::max<int64_t>(classes, 1));
  if (x.size(0) == 0) {
    AttackResult empty;
    empty.adversarial = x.clone();
    empty.success = at::zeros({0}, x.options().dtype(at::kBool));
    empty.linf = empty.l2 = at::zeros({0}, x.options().dtype(at::kDouble));
    empty.iterations = at::zeros({0}, x.options().dtype(at::kLong));
    return empty;
  }
  return perform(model, x.detach(), y.to(at::kLong));
}

}  // namespace bulwark
