#include "bulwark/defenses/ensemble.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "bulwark/eval/accuracy.h"
#include "core/check.h"

namespace bulwark {

EnsembleMode parse_ensemble_mode(std::string_view text) {
  if (text == "mean-logits") return EnsembleMode::MeanLogits;
  if (text == "mean-probabilities") return EnsembleMode::MeanProbabilities;
  if (text == "vote") return EnsembleMode::Vote;
  throw Error(fmt::format(
      "ensemble: unknown mode '{}', expected mean-logits, mean-probabilities or vote", text));
}

std::string to_string(EnsembleMode mode) {
  switch (mode) {
    case EnsembleMode::MeanLogits: return "mean-logits";
    case EnsembleMode::MeanProbabilities: return "mean-probabilities";
    case EnsembleMode::Vote: return "vote";
  }
  return "unknown";
}

Model make_ensemble(std::vector<Model> members, EnsembleMode mode) {
  BULWARK_CHECK(!members.empty(), "make_ensemble: needs at least one member");
  std::string name = "ensemble(" + to_string(mode) + ":";
  for (size_t i = 0; i < members.size(); ++i) name += (i ? "," : "") + members[i].name();
  name += ")";
  auto forward = [members, mode](const at::Tensor& x) -> at::Tensor {
    at::Tensor total;
    for (size_t i = 0; i < members.size(); ++i) {
      const auto logits = members[i].forward(x);
      if (i > 0) {
        BULWARK_CHECK(logits.sizes() == total.sizes(),
                      "ensemble: member {} ('{}') returned {} but member 0 ('{}') returned {}: "
                      "members must have the same number of classes",
                      i, members[i].name(), detail::shape_string(logits), members[0].name(),
                      detail::shape_string(total));
      }
      at::Tensor term;
      switch (mode) {
        case EnsembleMode::MeanLogits: term = logits; break;
        case EnsembleMode::MeanProbabilities: term = logits.softmax(1); break;
        case EnsembleMode::Vote:
          term = at::one_hot(logits.argmax(1), logits.size(1)).to(logits.scalar_type());
          break;
      }
      total = i == 0 ? term : total + term;
    }
    const auto mean = total / static_cast<double>(members.size());
    return mode == EnsembleMode::MeanProbabilities ? mean.log() : mean;
  };
  return Model::composite(std::move(members), std::move(forward), std::move(name));
}

namespace {

double mean_of(const at::Tensor& mask) { return mask.to(at::kDouble).mean().item<double>(); }

}  // namespace

EnsembleDiversity ensemble_diversity(const std::vector<Model>& members, EnsembleMode mode,
                                     const Dataset& data, Attack& attack, int64_t batch_size) {
  BULWARK_CHECK(members.size() >= 2, "ensemble_diversity: needs at least two members, got {}",
                members.size());
  BULWARK_CHECK(data.size() > 0, "ensemble_diversity: the dataset is empty");
  BULWARK_CHECK(batch_size >= 1, "ensemble_diversity: batch_size must be >= 1, got {}",
                batch_size);
  const auto k = members.size();
  auto copies = members;
  auto ensemble = make_ensemble(members, mode);
  // Attacks cannot follow a vote: they attack the mean-probabilities ensemble instead.
  auto attacked_ensemble =
      mode == EnsembleMode::Vote ? make_ensemble(members, EnsembleMode::MeanProbabilities) : ensemble;
  const auto labels = data.labels.cpu();  // predict() answers on the CPU
  EnsembleDiversity out;
  out.samples = data.size();
  std::vector<at::Tensor> clean(k);
  for (size_t i = 0; i < k; ++i) {
    out.members.push_back(copies[i].name());
    clean[i] = predict(copies[i], data.images, batch_size);
    out.clean_accuracy.push_back(mean_of(clean[i] == labels));
  }
  out.ensemble_clean_accuracy = mean_of(predict(ensemble, data.images, batch_size) == labels);
  out.agreement.assign(k, std::vector<double>(k, 1.0));
  for (size_t i = 0; i < k; ++i) {
    for (size_t j = i + 1; j < k; ++j) {
      out.agreement[i][j] = out.agreement[j][i] = mean_of(clean[i] == clean[j]);
    }
  }
  out.transfer.assign(k, std::vector<double>(k, std::numeric_limits<double>::quiet_NaN()));
  for (size_t i = 0; i < k; ++i) {
    const auto adversarial = run_in_batches(attack, copies[i], data.images, data.labels, batch_size);
    const auto fooled_i = predict(copies[i], adversarial, batch_size) != labels;
    const auto count = fooled_i.sum().item<int64_t>();
    for (size_t j = 0; j < k; ++j) {
      if (count == 0) continue;
      const auto fooled_j = predict(copies[j], adversarial, batch_size) != labels;
      out.transfer[i][j] = static_cast<double>((fooled_i & fooled_j).sum().item<int64_t>()) /
                           static_cast<double>(count);
    }
    out.ensemble_accuracy_under_transfer.push_back(
        mean_of(predict(ensemble, adversarial, batch_size) == labels));
  }
  const auto direct = run_in_batches(attack, attacked_ensemble, data.images, data.labels, batch_size);
  out.ensemble_robust_accuracy = mean_of(predict(ensemble, direct, batch_size) == labels);
  return out;
}

}  // namespace bulwark
