#include "bulwark/defenses/randomized_smoothing.h"

#include <boost/math/distributions/beta.hpp>
#include <boost/math/distributions/binomial.hpp>
#include <boost/math/distributions/normal.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <chrono>
#include <cmath>

#include "bulwark/attacks/pgd.h"
#include "bulwark/core/seed.h"
#include "bulwark/eval/accuracy.h"
#include "core/check.h"

namespace bulwark {

void SmoothingOptions::validate() const {
  BULWARK_CHECK(sigma_ > 0 && std::isfinite(sigma_),
                "randomized smoothing: sigma must be finite and > 0, got {}", sigma_);
  BULWARK_CHECK(n0_ >= 1 && n_ >= 1, "randomized smoothing: n0 and n must be >= 1, got {} and {}",
                n0_, n_);
  BULWARK_CHECK(alpha_ > 0 && alpha_ < 1, "randomized smoothing: alpha must be in (0, 1), got {}",
                alpha_);
  BULWARK_CHECK(batch_size_ >= 1, "randomized smoothing: batch_size must be >= 1, got {}",
                batch_size_);
}

double clopper_pearson_lower(int64_t successes, int64_t trials, double alpha) {
  BULWARK_CHECK(trials >= 1 && successes >= 0 && successes <= trials,
                "clopper_pearson_lower: need 0 <= successes <= trials and trials >= 1, got {} of {}",
                successes, trials);
  BULWARK_CHECK(alpha > 0 && alpha < 1, "clopper_pearson_lower: alpha must be in (0, 1), got {}",
                alpha);
  if (successes == 0) return 0.0;
  const boost::math::beta_distribution<double> beta(static_cast<double>(successes),
                                                     static_cast<double>(trials - successes + 1));
  return boost::math::quantile(beta, alpha);
}

double binomial_test_half(int64_t successes, int64_t trials) {
  BULWARK_CHECK(trials >= 0 && successes >= 0 && successes <= trials,
                "binomial_test_half: need 0 <= successes <= trials, got {} of {}", successes,
                trials);
  if (trials == 0) return 1.0;
  const auto extreme = std::max(successes, trials - successes);
  if (2 * extreme == trials) return 1.0;
  const boost::math::binomial_distribution<double> binomial(static_cast<double>(trials), 0.5);
  // P(X >= extreme), doubled: the distribution is symmetric.
  const double tail =
      boost::math::cdf(boost::math::complement(binomial, static_cast<double>(extreme - 1)));
  return std::min(1.0, 2.0 * tail);
}

SmoothedClassifier::SmoothedClassifier(Model base, SmoothingOptions options)
    : base_(std::move(base)), options_(options) {
  options_.validate();
  generator_ = make_generator(options_.seed(), base_.device());
}

at::Tensor SmoothedClassifier::sample_counts(const at::Tensor& x, int64_t draws) {
  BULWARK_CHECK(x.defined() && x.dim() >= 1,
                "randomized smoothing: x must be one input (no batch dimension), got {}",
                x.defined() ? detail::shape_string(x) : "undefined");
  BULWARK_CHECK(draws >= 1, "randomized smoothing: draws must be >= 1, got {}", draws);
  detail::check_finite("randomized smoothing", "x", x);
  EvalModeGuard guard(base_);
  torch::NoGradGuard no_grad;
  at::Tensor counts;
  for (int64_t done = 0; done < draws; done += options_.batch_size()) {
    const int64_t size = std::min(options_.batch_size(), draws - done);
    auto shape = x.sizes().vec();
    shape.insert(shape.begin(), size);
    const auto noisy =
        x.unsqueeze(0).expand(shape) + at::normal(0.0, options_.sigma(), shape, generator_, x.options());
    const auto logits = base_.forward(noisy);
    const auto batch_counts = at::bincount(logits.argmax(1), {}, logits.size(1));
    counts = counts.defined() ? counts + batch_counts : batch_counts;
  }
  return counts.cpu();
}

int64_t SmoothedClassifier::predict(const at::Tensor& x) {
  const auto counts = sample_counts(x, options_.n());
  const auto top = counts.topk(std::min<int64_t>(2, counts.size(0)));
  const auto values = std::get<0>(top);
  const auto count_a = values[0].item<int64_t>();
  const auto count_b = values.size(0) > 1 ? values[1].item<int64_t>() : 0;
  if (binomial_test_half(count_a, count_a + count_b) > options_.alpha()) return -1;
  return std::get<1>(top)[0].item<int64_t>();
}

Certificate SmoothedClassifier::certify(const at::Tensor& x) {
  const auto selection = sample_counts(x, options_.n0());
  const int64_t candidate = selection.argmax().item<int64_t>();
  const auto counts = sample_counts(x, options_.n());
  Certificate out;
  out.count = counts[candidate].item<int64_t>();
  out.pa_lower = clopper_pearson_lower(out.count, options_.n(), options_.alpha());
  if (out.pa_lower > 0.5) {
    out.label = candidate;
    out.radius = options_.sigma() *
                 boost::math::quantile(boost::math::normal_distribution<double>(), out.pa_lower);
  }
  return out;
}

CertificationReport certify_dataset(Model& model, const Dataset& data,
                                    const SmoothingOptions& options,
                                    const std::vector<double>& radii,
                                    const CertifyProgress& progress) {
  options.validate();
  BULWARK_CHECK(data.size() > 0, "certify: the dataset is empty");
  for (const double r : radii) {
    BULWARK_CHECK(r >= 0 && std::isfinite(r), "certify: radii must be finite and >= 0, got {}", r);
  }
  const auto start = std::chrono::steady_clock::now();
  CertificationReport report;
  report.model = model.name();
  report.data = data.name;
  report.options = options;
  SmoothedClassifier smoothed(model, options);
  const auto device = model.device();
  const auto images = data.images.to(device);
  const auto labels = data.labels.cpu();
  const int64_t base_correct =
      (predict(model, images, options.batch_size()) == labels).sum().item<int64_t>();
  int64_t abstained = 0;
  for (int64_t i = 0; i < data.size(); ++i) {
    report.certificates.push_back(smoothed.certify(images[i]));
    report.labels.push_back(labels[i].item<int64_t>());
    abstained += report.certificates.back().label < 0 ? 1 : 0;
    if (progress) progress(i + 1, data.size());
  }
  const auto n = static_cast<double>(data.size());
  for (const double r : radii) {
    int64_t certified = 0;
    for (size_t i = 0; i < report.certificates.size(); ++i) {
      const auto& c = report.certificates[i];
      // Cohen et al. count a radius as certified when it is at least r (>=, as their
      // analysis script does).
      certified += c.label == report.labels[i] && c.radius >= r ? 1 : 0;
    }
    report.curve.emplace_back(r, static_cast<double>(certified) / n);
  }
  report.abstain_rate = static_cast<double>(abstained) / n;
  report.clean_accuracy_of_base = static_cast<double>(base_correct) / n;
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  report.draws_per_second =
      n * static_cast<double>(options.n0() + options.n()) / std::max(report.seconds, 1e-9);
  return report;
}

Model smoothed_soft_model(Model base, double sigma, int64_t draws, uint64_t seed) {
  BULWARK_CHECK(sigma > 0 && std::isfinite(sigma),
                "smoothed_soft_model: sigma must be finite and > 0, got {}", sigma);
  BULWARK_CHECK(draws >= 1, "smoothed_soft_model: draws must be >= 1, got {}", draws);
  auto generator = make_generator(seed, base.device());
  auto forward = [base, sigma, draws, generator](const at::Tensor& x) mutable -> at::Tensor {
    auto shape = x.sizes().vec();
    shape.insert(shape.begin(), draws);
    const auto noisy = (x.unsqueeze(0).expand(shape) +
                        at::normal(0.0, sigma, shape, generator, x.options()))
                           .flatten(0, 1);
    const auto probabilities = base.forward(noisy).softmax(1).view({draws, x.size(0), -1});
    return probabilities.mean(0).clamp_min(1e-12).log();
  };
  return Model::composite({base}, std::move(forward), "smoothed(" + base.name() + ")");
}

std::vector<std::pair<double, double>> smoothed_accuracy_under_attack(
    Model& model, const Dataset& data, const SmoothingOptions& options,
    const std::vector<double>& radii, int64_t steps, int64_t eot_draws) {
  options.validate();
  BULWARK_CHECK(data.size() > 0, "smoothed_accuracy_under_attack: the dataset is empty");
  BULWARK_CHECK(steps >= 1 && eot_draws >= 1,
                "smoothed_accuracy_under_attack: steps and eot_draws must be >= 1, got {} and {}",
                steps, eot_draws);
  const auto device = model.device();
  auto soft = smoothed_soft_model(model, options.sigma(), eot_draws, derive_seed(options.seed(), 1));
  SmoothedClassifier smoothed(model, options);
  std::vector<std::pair<double, double>> out;
  const auto labels = data.labels.cpu();
  for (const double radius : radii) {
    BULWARK_CHECK(radius >= 0 && std::isfinite(radius),
                  "smoothed_accuracy_under_attack: radii must be finite and >= 0, got {}", radius);
    at::Tensor inputs = data.images.to(device);
    if (radius > 0) {
      PGD pgd(PGDOptions(radius).norm(Norm::L2).steps(steps).seed(options.seed()));
      inputs = run_in_batches(pgd, soft, inputs, data.labels.to(device), 64);
    }
    int64_t correct = 0;
    for (int64_t i = 0; i < data.size(); ++i) {
      correct += smoothed.predict(inputs[i]) == labels[i].item<int64_t>() ? 1 : 0;
    }
    out.emplace_back(radius, static_cast<double>(correct) / static_cast<double>(data.size()));
  }
  return out;
}

std::string to_json(const CertificationReport& report) {
  nlohmann::json j;
  j["model"] = report.model;
  j["data"] = report.data;
  j["sigma"] = report.options.sigma();
  j["n0"] = report.options.n0();
  j["n"] = report.options.n();
  j["alpha"] = report.options.alpha();
  j["seed"] = report.options.seed();
  j["samples"] = report.certificates.size();
  j["abstain_rate"] = report.abstain_rate;
  j["clean_accuracy_of_base"] = report.clean_accuracy_of_base;
  j["seconds"] = report.seconds;
  j["draws_per_second"] = report.draws_per_second;
  auto curve = nlohmann::json::array();
  for (const auto& [r, acc] : report.curve) curve.push_back({{"radius", r}, {"certified_accuracy", acc}});
  j["certified_accuracy"] = curve;
  auto empirical = nlohmann::json::array();
  for (const auto& [r, acc] : report.empirical) {
    empirical.push_back({{"radius", r}, {"accuracy_under_attack", acc}});
  }
  j["empirical_accuracy"] = empirical;
  auto per_sample = nlohmann::json::array();
  for (size_t i = 0; i < report.certificates.size(); ++i) {
    const auto& c = report.certificates[i];
    per_sample.push_back({{"label", report.labels[i]},
                          {"prediction", c.label},
                          {"radius", c.radius},
                          {"pa_lower", c.pa_lower},
                          {"count", c.count},
                          {"correct", c.label == report.labels[i]}});
  }
  j["certificates"] = per_sample;
  return j.dump(2);
}

std::string to_markdown(const CertificationReport& report) {
  std::string out = fmt::format(
      "# Certified robustness (randomized smoothing)\n\n"
      "Model `{}` on {} ({} images); σ = {}, n0 = {}, n = {}, α = {}.\n\n"
      "Base model clean accuracy {:.1f}%; the smoothed classifier abstains on {:.1f}%. "
      "{:.0f} noisy forward passes per second, {:.1f} s in all.\n\n"
      "| L2 radius | certified accuracy |\n|---:|---:|\n",
      report.model, report.data.empty() ? "the data" : report.data, report.certificates.size(),
      report.options.sigma(), report.options.n0(), report.options.n(), report.options.alpha(),
      100 * report.clean_accuracy_of_base, 100 * report.abstain_rate, report.draws_per_second,
      report.seconds);
  for (const auto& [r, acc] : report.curve) out += fmt::format("| {:.2f} | {:.1f}% |\n", r, 100 * acc);
  if (!report.empirical.empty()) {
    out += "\nAccuracy of the smoothed classifier (PREDICT) under an L2 PGD attack with EOT over the "
           "noise (an upper bound that the certified accuracy must stay under):\n\n"
           "| L2 radius | accuracy under attack |\n|---:|---:|\n";
    for (const auto& [r, acc] : report.empirical) out += fmt::format("| {:.2f} | {:.1f}% |\n", r, 100 * acc);
  }
  return out;
}

}  // namespace bulwark
