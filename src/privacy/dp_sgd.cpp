// DP-SGD's private gradient, the secure Gaussian source and Poisson sampling.
#include "bulwark/privacy/dp_sgd.h"

#include <sys/random.h>
#include <torch/torch.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <numbers>

#include "bulwark/core/seed.h"
#include "bulwark/privacy/accountant.h"
#include "core/check.h"

namespace bulwark {

void DPSGDOptions::validate() const {
  BULWARK_CHECK(std::isfinite(noise_multiplier_) && noise_multiplier_ >= 0,
                "DP-SGD: the noise multiplier must be finite and >= 0, got {}",
                noise_multiplier_);
  BULWARK_CHECK(std::isfinite(max_grad_norm_) && max_grad_norm_ > 0,
                "DP-SGD: max_grad_norm must be finite and > 0, got {}", max_grad_norm_);
  BULWARK_CHECK(physical_batch_size_ >= 0,
                "DP-SGD: physical_batch_size must be >= 0 (0: whole batch), got {}",
                physical_batch_size_);
  BULWARK_CHECK(std::isfinite(target_epsilon_) && target_epsilon_ >= 0,
                "DP-SGD: target_epsilon must be finite and >= 0 (0: none), got {}",
                target_epsilon_);
  BULWARK_CHECK(std::isfinite(epsilon_budget_) && epsilon_budget_ >= 0,
                "DP-SGD: epsilon_budget must be finite and >= 0 (0: none), got {}",
                epsilon_budget_);
  BULWARK_CHECK(delta_ > 0 && delta_ < 1, "DP-SGD: delta must be in (0, 1), got {}", delta_);
  make_accountant(accountant_);  // throws on an unknown name
}

at::Tensor secure_standard_normal(int64_t count) {
  BULWARK_CHECK(count >= 0, "secure_standard_normal: count must be >= 0, got {}", count);
  const int64_t pairs = (count + 1) / 2;
  std::vector<uint64_t> bits(static_cast<size_t>(2 * pairs));
  auto* bytes = reinterpret_cast<char*>(bits.data());
  size_t needed = bits.size() * sizeof(uint64_t), done = 0;
  while (done < needed) {
    const ssize_t got = getrandom(bytes + done, needed - done, 0);
    if (got < 0) {
      BULWARK_CHECK(errno == EINTR, "secure_standard_normal: getrandom failed: {}",
                    std::strerror(errno));
      continue;
    }
    done += static_cast<size_t>(got);
  }
  auto out = at::empty({2 * pairs}, at::kDouble);
  auto* z = out.data_ptr<double>();
  constexpr double kScale = 1.0 / 9007199254740992.0;  // 2^-53
  for (int64_t i = 0; i < pairs; ++i) {
    // u1 in (0, 1], u2 in [0, 1): 53 random bits each.
    const double u1 = (static_cast<double>(bits[2 * i] >> 11) + 1.0) * kScale;
    const double u2 = static_cast<double>(bits[2 * i + 1] >> 11) * kScale;
    const double r = std::sqrt(-2.0 * std::log(u1));
    z[2 * i] = r * std::cos(2 * std::numbers::pi * u2);
    z[2 * i + 1] = r * std::sin(2 * std::numbers::pi * u2);
  }
  return out.slice(0, 0, count);
}

DPSGD::DPSGD(Model model, DPSGDOptions options)
    : model_(std::move(model)), options_(std::move(options)) {
  options_.validate();
  engine_ = std::make_unique<PerSampleGradients>(model_);
}

DPSGD::~DPSGD() = default;

void DPSGD::set_noise_multiplier(double sigma) {
  BULWARK_CHECK(std::isfinite(sigma) && sigma >= 0,
                "DP-SGD: the noise multiplier must be finite and >= 0, got {}", sigma);
  options_.noise_multiplier(sigma);
}

std::string DPSGD::summary() const { return engine_->summary(); }

PrivateGradient DPSGD::gradient(int64_t n, const PerSampleLossFn& losses,
                                double expected_batch_size, at::Generator& generator) {
  BULWARK_CHECK(n >= 0, "DP-SGD: the batch size must be >= 0, got {}", n);
  BULWARK_CHECK(std::isfinite(expected_batch_size) && expected_batch_size > 0,
                "DP-SGD: the expected batch size must be > 0, got {}", expected_batch_size);
  const auto& parameters = engine_->parameters();
  std::vector<at::Tensor> sums;
  for (const auto& p : parameters) sums.push_back(at::zeros_like(p));
  PrivateGradient out;
  out.batch_size = n;
  std::vector<at::Tensor> all_losses, all_norms;
  const int64_t chunk = options_.physical_batch_size() > 0 ? options_.physical_batch_size() : n;
  for (int64_t begin = 0; begin < n; begin += chunk) {
    const int64_t end = std::min(n, begin + chunk);
    const auto part = engine_->clipped_sum(
        end - begin, [&](int64_t b, int64_t e) { return losses(begin + b, begin + e); },
        options_.max_grad_norm(), options_.clipping());
    for (size_t p = 0; p < sums.size(); ++p) sums[p].add_(part.sum[p]);
    all_losses.push_back(part.losses);
    all_norms.push_back(part.norms);
  }
  torch::NoGradGuard no_grad;
  if (n > 0) {
    out.losses = at::cat(all_losses);
    out.norms = at::cat(all_norms);
    out.mean_loss = out.losses.mean().item<double>();
    out.clipped_fraction =
        (out.norms > options_.max_grad_norm()).to(at::kDouble).mean().item<double>();
  }
  const double std = options_.noise_multiplier() * options_.max_grad_norm();
  for (size_t p = 0; p < parameters.size(); ++p) {
    const auto& param = parameters[p];
    if (std > 0) {
      at::Tensor noise;
      if (options_.secure_rng()) {
        noise = secure_standard_normal(param.numel()).view(param.sizes()) * std;
      } else {
        noise = at::normal(0.0, std, param.sizes(), generator, at::TensorOptions(at::kDouble));
      }
      sums[p].add_(noise.to(param.options()));
    }
    auto grad = sums[p].div_(expected_batch_size);
    auto& slot = param.mutable_grad();
    if (slot.defined()) {
      slot.copy_(grad);
    } else {
      slot = grad;
    }
  }
  return out;
}

PoissonSampler::PoissonSampler(int64_t dataset_size, double sample_rate, uint64_t seed)
    : size_(dataset_size), rate_(sample_rate), seed_(seed) {
  BULWARK_CHECK(dataset_size >= 1, "PoissonSampler: the dataset must hold samples, got {}",
                dataset_size);
  BULWARK_CHECK(sample_rate > 0 && sample_rate <= 1,
                "PoissonSampler: the sampling rate must be in (0, 1], got {}", sample_rate);
}

int64_t PoissonSampler::steps_per_epoch() const {
  return std::max<int64_t>(1, std::llround(1.0 / rate_));
}

std::vector<at::Tensor> PoissonSampler::epoch(int64_t epoch) const {
  auto generator = make_generator(derive_seed(seed_, 3000 + static_cast<uint64_t>(epoch)));
  std::vector<at::Tensor> steps;
  const auto probabilities = at::full({size_}, rate_, at::kDouble);
  for (int64_t s = 0; s < steps_per_epoch(); ++s) {
    const auto mask = at::bernoulli(probabilities, generator).to(at::kBool);
    steps.push_back(mask.nonzero().view(-1));
  }
  return steps;
}

}  // namespace bulwark
