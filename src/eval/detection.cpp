#include "bulwark/eval/detection.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <chrono>
#include <cmath>

#include "bulwark/eval/accuracy.h"
#include "core/check.h"

namespace bulwark {
namespace {

std::vector<double> to_vector(const at::Tensor& t) {
  const auto c = t.to(at::kDouble).cpu().contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

RocCurve roc_curve(const at::Tensor& negative_scores, const at::Tensor& positive_scores) {
  BULWARK_CHECK(negative_scores.defined() && positive_scores.defined() &&
                    negative_scores.numel() > 0 && positive_scores.numel() > 0,
                "roc_curve: needs at least one negative and one positive score");
  const auto neg = to_vector(negative_scores.flatten());
  const auto pos = to_vector(positive_scores.flatten());
  std::vector<std::pair<double, bool>> all;  // (score, positive)
  all.reserve(neg.size() + pos.size());
  for (const double s : neg) all.emplace_back(s, false);
  for (const double s : pos) all.emplace_back(s, true);
  for (const auto& [s, p] : all) {
    BULWARK_CHECK(!std::isnan(s), "roc_curve: a score is NaN");
  }
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  const auto n_neg = static_cast<double>(neg.size());
  const auto n_pos = static_cast<double>(pos.size());
  RocCurve curve;
  curve.fpr.push_back(0);
  curve.tpr.push_back(0);
  curve.thresholds.push_back(std::numeric_limits<double>::infinity());
  double fp = 0, tp = 0, area = 0;
  for (size_t i = 0; i < all.size();) {
    const double score = all[i].first;
    double group_fp = 0, group_tp = 0;
    for (; i < all.size() && all[i].first == score; ++i) (all[i].second ? group_tp : group_fp) += 1;
    // Trapezoid: ties between a positive and a negative count one half.
    area += group_fp * (tp + group_tp / 2);
    fp += group_fp;
    tp += group_tp;
    curve.fpr.push_back(fp / n_neg);
    curve.tpr.push_back(tp / n_pos);
    curve.thresholds.push_back(score);
  }
  curve.auc = area / (n_neg * n_pos);
  return curve;
}

double tpr_at_fpr(const RocCurve& curve, double fpr) {
  BULWARK_CHECK(fpr >= 0 && fpr <= 1, "tpr_at_fpr: fpr must be in [0, 1], got {}", fpr);
  BULWARK_CHECK(!curve.fpr.empty() && curve.fpr.size() == curve.tpr.size(),
                "tpr_at_fpr: the curve needs as many (non-zero) fpr as tpr points, got {} and {}",
                curve.fpr.size(), curve.tpr.size());
  double best = 0;
  for (size_t i = 0; i < curve.fpr.size(); ++i) {
    if (curve.fpr[i] <= fpr + 1e-12) best = std::max(best, curve.tpr[i]);
  }
  return best;
}

void DetectionEvaluationOptions::validate() const {
  BULWARK_CHECK(target_fpr_ >= 0 && target_fpr_ < 1,
                "detection: the target false-positive rate must be in [0, 1), got {}", target_fpr_);
  BULWARK_CHECK(calibration_fraction_ > 0 && calibration_fraction_ < 1,
                "detection: the calibration fraction must be in (0, 1), got {}",
                calibration_fraction_);
  BULWARK_CHECK(batch_size_ >= 1, "detection: batch_size must be >= 1, got {}", batch_size_);
  if (adaptive_) adaptive_->validate();
}

DetectionReport evaluate_detector(Model& model, Detector& detector, const Dataset& data,
                                  const std::vector<std::shared_ptr<Attack>>& attacks,
                                  const DetectionEvaluationOptions& options,
                                  const DetectionProgress& progress) {
  options.validate();
  const auto start = std::chrono::steady_clock::now();
  const auto calibration_size = static_cast<int64_t>(
      std::floor(options.calibration_fraction() * static_cast<double>(data.size())));
  BULWARK_CHECK(calibration_size >= 1 && calibration_size < data.size(),
                "detection: {} images cannot be split into calibration and test sets",
                data.size());
  const auto calibration = data.slice(0, calibration_size);
  const auto test = data.slice(calibration_size, data.size());
  const int64_t batch = options.batch_size();

  DetectionReport report;
  report.model = model.name();
  report.detector = detector.name();
  report.data = data.name;
  report.target_fpr = options.target_fpr();
  report.calibration_samples = calibration.size();
  report.test_samples = test.size();

  if (progress) progress("calibrate", 0, 1);
  report.threshold =
      detector.calibrate(score_in_batches(detector, calibration.images, batch), options.target_fpr());

  // Clean test scores (the negatives) and the time they take against plain forward passes.
  auto timer = std::chrono::steady_clock::now();
  const auto clean_scores = score_in_batches(detector, test.images, batch);
  const double detector_seconds = seconds_since(timer);
  timer = std::chrono::steady_clock::now();
  const auto correct = predict(model, test.images, batch) == test.labels.cpu();
  report.overhead_vs_forward = detector_seconds / std::max(seconds_since(timer), 1e-9);
  report.clean_accuracy = correct.to(at::kDouble).mean().item<double>();
  report.test_fpr = (clean_scores > report.threshold).to(at::kDouble).mean().item<double>();
  const auto index = correct.nonzero().squeeze(1).to(test.images.device());
  const auto x = test.images.index_select(0, index);
  const auto y = test.labels.index_select(0, index);

  const auto measure = [&](const std::string& name, bool adaptive, double eps,
                           const std::function<at::Tensor(const at::Tensor&, const at::Tensor&)>&
                               make_adversarial) {
    DetectionResult result;
    result.attack = name;
    result.adaptive = adaptive;
    result.eps = eps;
    result.attacked = x.size(0);
    std::vector<at::Tensor> fooled_parts, score_parts;
    const int64_t batches = (x.size(0) + batch - 1) / batch;
    for (int64_t s = 0, b = 0; s < x.size(0); s += batch, ++b) {
      if (progress) progress(name, b, batches);
      const auto xb = x.slice(0, s, s + batch);
      const auto yb = y.slice(0, s, s + batch);
      const auto adversarial = make_adversarial(xb, yb).detach();
      fooled_parts.push_back(predict(model, adversarial, batch) != yb.cpu());
      score_parts.push_back(detector.score(adversarial));
    }
    if (progress) progress(name, batches, batches);
    const auto fooled = x.size(0) ? at::cat(fooled_parts) : at::zeros({0}, at::kBool);
    const auto scores = x.size(0) ? at::cat(score_parts) : at::zeros({0}, at::kDouble);
    result.fooled = fooled.sum().item<int64_t>();
    const auto flagged = scores > report.threshold;
    if (result.fooled > 0) {
      const auto positives = scores.index({fooled});
      result.roc = roc_curve(clean_scores, positives);
      result.auc = result.roc.auc;
      result.tpr_at_1 = tpr_at_fpr(result.roc, 0.01);
      result.tpr_at_5 = tpr_at_fpr(result.roc, 0.05);
      result.detection_rate = flagged.index({fooled}).to(at::kDouble).mean().item<double>();
    }
    if (result.attacked > 0) {
      result.undetected_success = static_cast<double>(
                                      (fooled & flagged.logical_not()).sum().item<int64_t>()) /
                                  static_cast<double>(result.attacked);
    }
    report.results.push_back(std::move(result));
  };

  for (const auto& attack : attacks) {
    BULWARK_CHECK(attack != nullptr, "detection: an attack is null");
    measure(attack->name(), false, attack->eps(), [&](const at::Tensor& xb, const at::Tensor& yb) {
      return attack->run(model, xb, yb).adversarial;
    });
  }
  if (options.adaptive()) {
    const auto& adaptive = *options.adaptive();
    measure("adaptive-pgd", true, adaptive.eps(), [&](const at::Tensor& xb, const at::Tensor& yb) {
      return adaptive_attack(model, detector, xb, yb, adaptive);
    });
  }
  report.seconds = seconds_since(start);
  return report;
}

std::string to_json(const DetectionReport& report) {
  nlohmann::json j;
  j["model"] = report.model;
  j["detector"] = report.detector;
  j["data"] = report.data;
  j["target_fpr"] = report.target_fpr;
  j["threshold"] = report.threshold;
  j["calibration_samples"] = report.calibration_samples;
  j["test_samples"] = report.test_samples;
  j["test_fpr"] = report.test_fpr;
  j["clean_accuracy"] = report.clean_accuracy;
  j["seconds"] = report.seconds;
  j["overhead_vs_forward"] = report.overhead_vs_forward;
  auto results = nlohmann::json::array();
  for (const auto& r : report.results) {
    results.push_back({{"attack", r.attack},
                       {"adaptive", r.adaptive},
                       {"eps", r.eps},
                       {"attacked", r.attacked},
                       {"fooled", r.fooled},
                       {"auc", r.auc},
                       {"tpr_at_1_fpr", r.tpr_at_1},
                       {"tpr_at_5_fpr", r.tpr_at_5},
                       {"detection_rate", r.detection_rate},
                       {"undetected_success", r.undetected_success},
                       {"roc", {{"fpr", r.roc.fpr}, {"tpr", r.roc.tpr}}}});
  }
  j["results"] = results;
  return j.dump(2);
}

std::string to_markdown(const DetectionReport& report) {
  std::string out = fmt::format(
      "# Detection: {} on {}\n\n"
      "Data {}: {} clean images calibrate the threshold ({:.4g}, target false-positive rate "
      "{:.1f}%), {} test images; the test false-positive rate is {:.1f}%. Model accuracy on the "
      "test images {:.1f}%. The detector costs {:.2f}x a forward pass per input.\n\n"
      "| attack | adaptive | eps | attacked | fooled | ROC AUC | TPR @1% FPR | TPR @5% FPR | "
      "detected at threshold | fooled and undetected |\n"
      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
      report.detector, report.model, report.data.empty() ? "-" : report.data,
      report.calibration_samples, report.threshold, 100 * report.target_fpr, report.test_samples,
      100 * report.test_fpr, 100 * report.clean_accuracy, report.overhead_vs_forward);
  for (const auto& r : report.results) {
    out += fmt::format("| {} | {} | {} | {} | {} | {:.3f} | {:.1f}% | {:.1f}% | {:.1f}% | {:.1f}% |\n",
                       r.attack, r.adaptive ? "yes" : "no", r.eps, r.attacked, r.fooled, r.auc,
                       100 * r.tpr_at_1, 100 * r.tpr_at_5, 100 * r.detection_rate,
                       100 * r.undetected_success);
  }
  return out;
}

}  // namespace bulwark
