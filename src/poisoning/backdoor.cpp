// Backdoor poisoning (BadNets, blended) and its measurement.
#include "bulwark/poisoning/backdoor.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>

#include "bulwark/attacks/pgd.h"
#include "bulwark/eval/accuracy.h"
#include "core/check.h"
#include "poisoning/poisoning_detail.h"

namespace bulwark {

namespace {

void check_options(const Dataset& data, const BackdoorOptions& options, const char* what,
                   bool uses_rate) {
  if (uses_rate) detail::check_rate(options.rate(), what);
  BULWARK_CHECK(data.size() > 0, "{}: the data set is empty", what);
  BULWARK_CHECK(data.num_classes >= 2, "{}: a backdoor needs at least 2 classes, got {}", what,
                data.num_classes);
  if (options.mode() == BackdoorMode::AllToOne) {
    BULWARK_CHECK(options.target() >= 0 && options.target() < data.num_classes,
                  "{}: target class must be in [0, {}), got {}", what, data.num_classes,
                  options.target());
  }
}

at::Tensor backdoor_labels(const at::Tensor& labels, int64_t num_classes,
                           const BackdoorOptions& options) {
  if (options.mode() == BackdoorMode::AllToOne) return torch::full_like(labels, options.target());
  return (labels + 1).remainder(num_classes);
}

const char* trigger_kind(const Trigger& trigger) {
  if (trigger.is_masked()) return "mask";
  return trigger.is_patch() ? "patch" : "blend";
}

}  // namespace

int64_t backdoor_label(int64_t label, int64_t num_classes, const BackdoorOptions& options) {
  BULWARK_CHECK(num_classes >= 2 && label >= 0 && label < num_classes,
                "backdoor_label: needs num_classes >= 2 and a label in [0, num_classes), got {} "
                "and {}",
                num_classes, label);
  BULWARK_CHECK(options.mode() == BackdoorMode::AllToAll ||
                    (options.target() >= 0 && options.target() < num_classes),
                "backdoor_label: target class must be in [0, {}), got {}", num_classes,
                options.target());
  return options.mode() == BackdoorMode::AllToOne ? options.target() : (label + 1) % num_classes;
}

PoisonedDataset plant_backdoor(const Dataset& data, const Trigger& trigger,
                               const BackdoorOptions& options) {
  constexpr const char* what = "plant_backdoor";
  check_options(data, options, what, true);
  const auto labels = data.labels.cpu();
  const auto candidates = options.mode() == BackdoorMode::AllToOne
                              ? labels.ne(options.target()).nonzero().squeeze(1)
                              : torch::arange(data.size(), torch::kLong);
  // round(rate × N) of the whole set, drawn among the candidates.
  const auto wanted = detail::count_for(options.rate(), data.size());
  BULWARK_CHECK(wanted <= candidates.size(0),
                "{}: rate {} asks for {} images, but only {} are not of the target class", what,
                options.rate(), wanted, candidates.size(0));
  auto generator = make_generator(options.seed());
  const auto chosen = detail::choose(candidates, wanted, generator);
  const auto images = trigger.apply(data.images.index_select(0, chosen.to(data.images.device())));
  return detail::assemble(
      data, chosen, backdoor_labels(labels.index_select(0, chosen), data.num_classes, options),
      images,
      fmt::format("backdoor-{}-{}", trigger_kind(trigger), options.rate()));
}

void CleanLabelOptions::validate() const {
  detail::check_rate(rate_, "plant_clean_label_backdoor");
  BULWARK_CHECK(eps_ >= 0 && std::isfinite(eps_),
                "plant_clean_label_backdoor: eps must be finite and >= 0, got {}", eps_);
  BULWARK_CHECK(steps_ >= 1, "plant_clean_label_backdoor: steps must be >= 1, got {}", steps_);
  BULWARK_CHECK(batch_size_ >= 1, "plant_clean_label_backdoor: batch_size must be >= 1, got {}",
                batch_size_);
}

PoisonedDataset plant_clean_label_backdoor(Model& proxy, const Dataset& data,
                                           const Trigger& trigger,
                                           const CleanLabelOptions& options) {
  constexpr const char* what = "plant_clean_label_backdoor";
  options.validate();
  check_options(data, BackdoorOptions().target(options.target()), what, false);
  const auto labels = data.labels.cpu();
  const auto candidates = labels.eq(options.target()).nonzero().squeeze(1);
  auto generator = make_generator(options.seed());
  const auto chosen = detail::choose(
      candidates, detail::count_for(options.rate(), candidates.size(0)), generator);
  // Untargeted PGD away from the true (target) class on the proxy: the perturbed images are
  // hard to learn from their content, so the model leans on the trigger.
  PGD pgd(PGDOptions(options.eps())
              .steps(options.steps())
              .step_size(2.5 * options.eps() / static_cast<double>(options.steps()))
              .seed(options.seed())
              .box(options.box()));
  const auto device = proxy.device();
  std::vector<at::Tensor> perturbed;
  for (int64_t start = 0; start < chosen.size(0); start += options.batch_size()) {
    const auto part = chosen.slice(0, start, start + options.batch_size());
    perturbed.push_back(pgd.run(proxy, data.images.index_select(0, part.to(data.images.device()))
                                           .to(device),
                                labels.index_select(0, part).to(device))
                            .adversarial.to(data.images.device()));
  }
  const auto images =
      chosen.size(0) == 0
          ? data.images.index_select(0, chosen.to(data.images.device()))
          : options.box().clamp(trigger.apply(at::cat(perturbed)));
  return detail::assemble(data, chosen, labels.index_select(0, chosen), images,
                          fmt::format("clean-label-{}-{}", trigger_kind(trigger), options.rate()));
}

BackdoorEvaluation evaluate_backdoor(Model& model, const Dataset& test, const Trigger& trigger,
                                     const BackdoorOptions& options) {
  constexpr const char* what = "evaluate_backdoor";
  check_options(test, options, what, false);
  const auto labels = test.labels.cpu();
  const auto clean = clean_accuracy(model, test);
  const auto triggered = predict(model, trigger.apply(test.images));
  const auto want = backdoor_labels(labels, test.num_classes, options);
  BackdoorEvaluation out;
  out.clean_accuracy = clean.accuracy;
  out.per_class_accuracy = clean.per_class_accuracy;
  const auto counted = labels.ne(want);
  out.triggered = counted.sum().item<int64_t>();
  out.attack_success_rate =
      out.triggered == 0
          ? 0.0
          : triggered.eq(want).logical_and(counted).sum().item<double>() /
                static_cast<double>(out.triggered);
  return out;
}

}  // namespace bulwark
