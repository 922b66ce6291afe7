#include "bulwark/core/losses.h"

#include <torch/torch.h>

#include <limits>

#include "core/check.h"

namespace bulwark {
namespace {

void check_logits_and_labels(std::string_view where, const at::Tensor& logits,
                             const at::Tensor& labels, std::string_view labels_name = "labels") {
  detail::check_float_tensor(where, "logits", logits, 2);
  BULWARK_CHECK(logits.dim() == 2, "{}: logits must have shape [N, K], got {}", where,
                detail::shape_string(logits));
  detail::check_labels(where, labels_name, labels, logits.size(0), logits.size(1));
  BULWARK_CHECK(labels.device() == logits.device(), "{}: {} is on {} but logits are on {}", where,
                labels_name, labels.device().str(), logits.device().str());
}

at::Tensor reduce(const at::Tensor& per_sample, Reduction reduction) {
  switch (reduction) {
    case Reduction::Mean:
      return per_sample.numel() == 0 ? per_sample.sum() : per_sample.mean();
    case Reduction::Sum:
      return per_sample.sum();
    case Reduction::None:
      break;
  }
  return per_sample;
}

// The largest logit other than the one at `labels`, per sample.
at::Tensor max_other_logit(const at::Tensor& logits, const at::Tensor& labels) {
  const auto mask = at::one_hot(labels.to(at::kLong), logits.size(1)).to(at::kBool);
  return logits.masked_fill(mask, -std::numeric_limits<double>::infinity()).amax(1);
}

}  // namespace

at::Tensor cross_entropy(const at::Tensor& logits, const at::Tensor& labels, Reduction reduction) {
  check_logits_and_labels("cross_entropy", logits, labels);
  const auto per_sample =
      at::cross_entropy_loss(logits, labels.to(at::kLong), {}, at::Reduction::None);
  return reduce(per_sample, reduction);
}

at::Tensor cw_margin(const at::Tensor& logits, const at::Tensor& labels, double kappa,
                     bool targeted, Reduction reduction) {
  check_logits_and_labels("cw_margin", logits, labels);
  BULWARK_CHECK(kappa >= 0, "cw_margin: kappa must be >= 0, got {}", kappa);
  BULWARK_CHECK(logits.size(1) >= 2, "cw_margin: need at least 2 classes, got {}",
                logits.size(1));
  const auto label_logit = logits.gather(1, labels.to(at::kLong).unsqueeze(1)).squeeze(1);
  const auto other = max_other_logit(logits, labels);
  const auto margin = targeted ? other - label_logit : label_logit - other;
  return reduce(margin.clamp_min(-kappa), reduction);
}

at::Tensor dlr_loss(const at::Tensor& logits, const at::Tensor& labels, const at::Tensor& targets,
                    Reduction reduction) {
  check_logits_and_labels("dlr_loss", logits, labels);
  const bool targeted = targets.defined();
  const int64_t min_classes = targeted ? 4 : 3;
  BULWARK_CHECK(logits.size(1) >= min_classes,
                "dlr_loss: the {} DLR loss needs at least {} classes, got {}",
                targeted ? "targeted" : "untargeted", min_classes, logits.size(1));
  const auto sorted = std::get<0>(logits.sort(1, /*descending=*/true));
  const auto label_logit = logits.gather(1, labels.to(at::kLong).unsqueeze(1)).squeeze(1);
  at::Tensor loss;
  if (targeted) {
    check_logits_and_labels("dlr_loss", logits, targets, "targets");
    const auto target_logit = logits.gather(1, targets.to(at::kLong).unsqueeze(1)).squeeze(1);
    const auto denominator =
        sorted.select(1, 0) - (sorted.select(1, 2) + sorted.select(1, 3)) / 2 + 1e-12;
    loss = -(label_logit - target_logit) / denominator;
  } else {
    const auto denominator = sorted.select(1, 0) - sorted.select(1, 2) + 1e-12;
    loss = -(label_logit - max_other_logit(logits, labels)) / denominator;
  }
  return reduce(loss, reduction);
}

}  // namespace bulwark
