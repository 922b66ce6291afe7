#include "bulwark/defenses/detector.h"

#include <torch/torch.h>

#include <cmath>

#include "core/check.h"

namespace bulwark {

double threshold_for_fpr(const at::Tensor& clean_scores, double fpr) {
  BULWARK_CHECK(fpr >= 0 && fpr < 1, "calibrate: the target false-positive rate must be in [0, 1), got {}",
                fpr);
  BULWARK_CHECK(clean_scores.defined() && clean_scores.dim() == 1 && clean_scores.numel() > 0,
                "calibrate: needs a non-empty 1-D tensor of clean scores, got {}",
                clean_scores.defined() ? detail::shape_string(clean_scores) : "undefined");
  const auto scores = clean_scores.to(at::kDouble).cpu();
  BULWARK_CHECK(scores.isfinite().all().item<bool>(), "calibrate: the clean scores contain NaN or infinity");
  const auto sorted = std::get<0>(scores.sort(/*dim=*/0, /*descending=*/true));
  const auto allowed = static_cast<int64_t>(std::floor(fpr * static_cast<double>(scores.numel())));
  // Scores strictly above sorted[allowed] are at most `allowed` many.
  return sorted[allowed].item<double>();
}

double Detector::calibrate(const at::Tensor& clean_scores, double fpr) {
  threshold_ = threshold_for_fpr(clean_scores, fpr);
  return threshold_;
}

void Detector::set_threshold(double threshold) {
  BULWARK_CHECK(!std::isnan(threshold), "Detector::set_threshold: the threshold is NaN");
  threshold_ = threshold;
}

at::Tensor Detector::flag(const at::Tensor& x) { return score(x) > threshold_; }

at::Tensor score_in_batches(Detector& detector, const at::Tensor& x, int64_t batch_size) {
  BULWARK_CHECK(batch_size >= 1, "score_in_batches: batch_size must be >= 1, got {}", batch_size);
  BULWARK_CHECK(x.defined() && x.dim() >= 1, "score_in_batches: x must be a batch [N, ...]");
  std::vector<at::Tensor> parts;
  for (int64_t start = 0; start < x.size(0); start += batch_size) {
    parts.push_back(detector.score(x.slice(0, start, std::min(start + batch_size, x.size(0)))));
  }
  if (parts.empty()) return at::empty({0}, at::TensorOptions().dtype(at::kDouble));
  return at::cat(parts);
}

}  // namespace bulwark
