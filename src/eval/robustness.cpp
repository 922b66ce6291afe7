#include "bulwark/eval/robustness.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "bulwark/attacks/carlini_wagner.h"
#include "bulwark/attacks/pgd.h"
#include "bulwark/core/files.h"
#include "bulwark/eval/accuracy.h"
#include "core/check.h"

namespace bulwark {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Fraction of `mask` set, over `total`.
double fraction(const at::Tensor& mask, int64_t total) {
  return total == 0 ? 0.0
                    : static_cast<double>(mask.sum().item<int64_t>()) / static_cast<double>(total);
}

// Per-sample outcome of one attack over data[index] (CPU tensors).
struct Outcome {
  at::Tensor fooled, linf, l2;
  int64_t gradient_evaluations = 0;
  int64_t forward_evaluations = 0;
  double seconds = 0.0;
  std::vector<AttackStage> stages;
  std::vector<std::string> warnings;

  // Restricted to the budget `eps` of an attack that minimises the `norm` of its perturbation.
  Outcome within(double eps, Norm norm) const {
    Outcome o = *this;
    o.fooled = fooled.logical_and((norm == Norm::L2 ? l2 : linf) <= eps);
    return o;
  }
};

// Adds the per-component figures of one batch to the running totals. The components run in the
// same order in every batch, but a batch may stop early or add one at the end (the fast
// version's full Square runs only where its probe fooled a sample).
void add_stages(std::vector<AttackStage>& total, const std::vector<AttackStage>& batch) {
  for (size_t i = 0; i < batch.size(); ++i) {
    if (i == total.size()) {
      total.push_back(batch[i]);
      continue;
    }
    total[i].attacked += batch[i].attacked;
    total[i].fooled += batch[i].fooled;
    total[i].gradient_evaluations += batch[i].gradient_evaluations;
    total[i].forward_evaluations += batch[i].forward_evaluations;
    total[i].seconds += batch[i].seconds;
  }
}

// Runs `attack` on data[index] batch by batch.
Outcome attack_samples(Model& model, Attack& attack, const Dataset& data, const at::Tensor& index,
                       int64_t batch_size, const EvaluationProgress& progress) {
  const auto start = Clock::now();
  const auto device = model.device();
  const int64_t n = index.size(0);
  const int64_t batches = (n + batch_size - 1) / batch_size;
  std::vector<at::Tensor> fooled, linf, l2;
  Outcome outcome;
  for (int64_t b = 0; b < batches; ++b) {
    const auto rows = index.slice(0, b * batch_size, (b + 1) * batch_size);
    const auto x = data.images.index_select(0, rows).to(device);
    const auto y = data.labels.index_select(0, rows).to(device);
    const auto result = attack.run(model, x, y);
    fooled.push_back(result.success.cpu());
    linf.push_back(result.linf.cpu());
    l2.push_back(result.l2.cpu());
    outcome.gradient_evaluations += result.gradient_evaluations;
    outcome.forward_evaluations += result.forward_evaluations;
    add_stages(outcome.stages, result.stages);
    for (const auto& w : result.warnings) {
      if (std::find(outcome.warnings.begin(), outcome.warnings.end(), w) == outcome.warnings.end()) {
        outcome.warnings.push_back(w);
      }
    }
    if (progress) progress(attack.name(), attack.eps(), b + 1, batches);
  }
  const auto empty = at::zeros({0}, at::kDouble);
  outcome.fooled = n == 0 ? at::zeros({0}, at::kBool) : at::cat(fooled);
  outcome.linf = n == 0 ? empty : at::cat(linf);
  outcome.l2 = n == 0 ? empty : at::cat(l2);
  outcome.seconds = seconds_since(start);
  return outcome;
}

// Fills the figures of `eval` from an outcome over the clean-correct samples.
void summarise(const Outcome& outcome, int64_t total, AttackEvaluation& eval) {
  const int64_t attacked = outcome.fooled.size(0);
  eval.gradient_evaluations = outcome.gradient_evaluations;
  eval.forward_evaluations = outcome.forward_evaluations;
  eval.stages = outcome.stages;
  eval.seconds = outcome.seconds;
  eval.samples_per_second = static_cast<double>(attacked) / std::max(eval.seconds, 1e-9);
  eval.attack_success_rate = fraction(outcome.fooled, attacked);
  eval.robust_accuracy = fraction(outcome.fooled.logical_not(), total);
  const auto fooled_linf = outcome.linf.index({outcome.fooled});
  const auto fooled_l2 = outcome.l2.index({outcome.fooled});
  if (fooled_linf.numel() > 0) {
    eval.mean_linf = fooled_linf.mean().item<double>();
    eval.max_linf = fooled_linf.max().item<double>();
    eval.mean_l2 = fooled_l2.mean().item<double>();
    eval.max_l2 = fooled_l2.max().item<double>();
  }
}

void check_monotone(const RobustnessReport& report, std::vector<std::string>& warnings) {
  std::map<std::string, std::vector<const AttackEvaluation*>> by_attack;
  for (const auto& r : report.results) by_attack[r.attack + "/" + r.norm].push_back(&r);
  for (auto& [name, runs] : by_attack) {
    std::sort(runs.begin(), runs.end(), [](auto* a, auto* b) { return a->eps < b->eps; });
    for (size_t i = 1; i < runs.size(); ++i) {
      if (runs[i]->robust_accuracy > runs[i - 1]->robust_accuracy) {
        warnings.push_back(fmt::format(
            "{}: robust accuracy rises with eps ({:.4f} at eps {} > {:.4f} at eps {}): the "
            "attack is not converging or gradients are masked",
            name, runs[i]->robust_accuracy, runs[i]->eps, runs[i - 1]->robust_accuracy,
            runs[i - 1]->eps));
      }
    }
  }
  for (const auto& pgd : report.results) {
    if (pgd.attack != "pgd") continue;
    for (const auto& fgsm : report.results) {
      if (fgsm.attack == "fgsm" && fgsm.norm == pgd.norm && fgsm.eps == pgd.eps &&
          pgd.robust_accuracy > fgsm.robust_accuracy) {
        warnings.push_back(fmt::format(
            "pgd is weaker than fgsm at {} eps {} ({:.4f} > {:.4f}): an iterative attack must "
            "not lose to its one-step version; suspect gradient masking or too small a step",
            pgd.norm, pgd.eps, pgd.robust_accuracy, fgsm.robust_accuracy));
      }
    }
  }
}

// AutoAttack's check: when Square, which only queries outputs, fools more than 0.2% of the
// samples after the gradient attacks have run, their gradients are likely masked.
void check_black_box_stage(const AttackEvaluation& eval, int64_t total,
                           std::vector<std::string>& warnings) {
  for (size_t i = 1; i < eval.stages.size(); ++i) {
    const auto& stage = eval.stages[i];
    const double lowered = static_cast<double>(stage.fooled) / static_cast<double>(std::max<int64_t>(total, 1));
    if (stage.attack == "square" && lowered > 0.002) {
      warnings.push_back(fmt::format(
          "{} at {} eps {}: square, a black-box attack, lowered robust accuracy by {:.2f} points "
          "after the gradient attacks: suspect gradient masking; the robust accuracy of the "
          "gradient attacks alone is not trustworthy",
          eval.attack, eval.norm, eval.eps, 100 * lowered));
    }
  }
}

// Per class: samples, clean accuracy and worst-case robust accuracy at each budget.
std::vector<ClassRobustness> per_class_robustness(
    const Dataset& data, const at::Tensor& correct_index,
    const std::map<double, at::Tensor>& survived_all) {
  const auto labels = data.labels.cpu();
  const auto k = data.num_classes;
  const auto count = [k](const at::Tensor& of) { return at::bincount(of, {}, k); };
  const auto totals = count(labels);
  const auto correct_labels = labels.index_select(0, correct_index.cpu());
  const auto clean = count(correct_labels);
  std::vector<at::Tensor> robust;
  for (const auto& [eps, survivors] : survived_all) {
    robust.push_back(count(correct_labels.index({survivors.cpu()})));
  }
  std::vector<ClassRobustness> out;
  for (int64_t c = 0; c < k; ++c) {
    ClassRobustness row;
    row.label = c;
    if (!data.class_names.empty()) row.name = data.class_names[static_cast<size_t>(c)];
    row.samples = totals[c].item<int64_t>();
    const auto share = [&](const at::Tensor& counts) {
      return row.samples == 0 ? std::numeric_limits<double>::quiet_NaN()
                              : static_cast<double>(counts[c].item<int64_t>()) /
                                    static_cast<double>(row.samples);
    };
    row.clean_accuracy = share(clean);
    for (const auto& r : robust) row.robust_accuracy.push_back(share(r));
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace

RobustnessReport evaluate(Model& model, const Dataset& data,
                          const std::vector<std::shared_ptr<Attack>>& attacks,
                          const std::vector<double>& epsilons, const EvaluationOptions& options,
                          const EvaluationProgress& progress) {
  BULWARK_CHECK(data.size() > 0, "evaluate: the dataset '{}' is empty", data.name);
  BULWARK_CHECK(!attacks.empty(), "evaluate: no attack given");
  BULWARK_CHECK(data.class_names.empty() ||
                    static_cast<int64_t>(data.class_names.size()) == data.num_classes,
                "evaluate: '{}' has {} class names for {} classes", data.name,
                data.class_names.size(), data.num_classes);
  BULWARK_CHECK(!epsilons.empty(), "evaluate: no eps given");
  BULWARK_CHECK(options.batch_size() >= 1, "evaluate: batch_size must be >= 1, got {}",
                options.batch_size());
  for (const double eps : epsilons) {
    BULWARK_CHECK(eps >= 0 && std::isfinite(eps), "evaluate: every eps must be finite and >= 0, got {}",
                  eps);
  }
  for (const auto& attack : attacks) {
    BULWARK_CHECK(attack != nullptr, "evaluate: an attack is null");
    attack->box().check_contains("evaluate", "the data set's images", data.images);
  }
  const auto start = Clock::now();
  EvalModeGuard eval_mode(model);
  RobustnessReport report;
  report.model = model.name();
  report.data = data.name;
  report.samples = data.size();

  const auto correct = predict(model, data.images, options.batch_size()).eq(data.labels.cpu());
  report.clean_accuracy = fraction(correct, data.size());
  const auto correct_index = correct.nonzero().squeeze(1);

  std::map<double, at::Tensor> survived_all;  // eps → bool over correct_index
  std::map<double, std::vector<std::string>> attacks_at;
  std::map<const Attack*, Outcome> unbounded;  // one run per norm-minimising attack
  for (const auto& base : attacks) {
    if (base->minimizes_norm()) {
      auto attack = base->with_budget(std::numeric_limits<double>::infinity(), false);
      unbounded[base.get()] = attack_samples(model, *attack, data, correct_index,
                                             options.batch_size(), progress);
    }
    for (const double eps : epsilons) {
      AttackEvaluation eval;
      eval.attack = base->name();
      eval.norm = to_string(base->norm());
      eval.eps = eps;
      Outcome outcome;
      if (base->minimizes_norm()) {
        // The shared unbounded run, restricted to this budget; its time and gradient
        // evaluations are reported for every budget.
        outcome = unbounded[base.get()].within(eps, base->norm());
      } else {
        auto attack = base->with_budget(eps, options.early_stop());
        outcome = attack_samples(model, *attack, data, correct_index, options.batch_size(),
                                 progress);
      }
      summarise(outcome, data.size(), eval);
      for (const auto& w : outcome.warnings) {
        const auto text = fmt::format("{} at eps {}: {}", eval.attack, eps, w);
        if (std::find(report.warnings.begin(), report.warnings.end(), text) == report.warnings.end()) {
          report.warnings.push_back(text);
        }
      }
      check_black_box_stage(eval, data.size(), report.warnings);
      const auto survived = outcome.fooled.logical_not();
      auto& survivors = survived_all[eps];
      survivors = survivors.defined() ? survivors.logical_and(survived) : survived;
      attacks_at[eps].push_back(eval.attack + "/" + eval.norm);
      report.results.push_back(eval);
    }
  }
  for (const auto& [eps, survivors] : survived_all) {
    report.worst_case.push_back({eps, fraction(survivors, data.size()), attacks_at[eps]});
  }
  report.per_class = per_class_robustness(data, correct_index, survived_all);

  check_monotone(report, report.warnings);
  // Extra runs for the sanity checks, on a few clean-correct samples.
  const int64_t sanity = std::min<int64_t>(options.sanity_samples(), correct_index.size(0));
  if (sanity > 0) {
    const auto subset = correct_index.slice(0, 0, sanity);
    for (const auto& base : attacks) {
      if (base->name() == "pgd" && base->norm() == Norm::Linf) {
        // At an eps as wide as the box, an untargeted attack can draw any image.
        const double huge = base->box().upper - base->box().lower;
        auto attack = base->with_budget(huge, true);
        const auto outcome =
            attack_samples(model, *attack, data, subset, options.batch_size(), {});
        const double accuracy = fraction(outcome.fooled.logical_not(), sanity);
        if (accuracy > 0.05) {
          report.warnings.push_back(fmt::format(
              "pgd at eps {} (the whole input box) leaves {:.1f}% of {} samples robust; it "
              "should be about 0: gradients may be masked or the attack too weak",
              huge, 100 * accuracy, sanity));
        }
      } else if (base->name() == "cw") {
        // The unbounded run above covered these samples already.
        const double success =
            fraction(unbounded[base.get()].fooled.slice(0, 0, sanity), sanity);
        if (success < 0.95) {
          report.warnings.push_back(fmt::format(
              "unbounded C&W fooled only {:.1f}% of {} samples; it should fool about all: raise "
              "its steps or binary_search_steps, or suspect gradient masking",
              100 * success, sanity));
        }
      }
    }
  }
  report.seconds = seconds_since(start);
  report.samples_per_second = static_cast<double>(data.size()) / std::max(report.seconds, 1e-9);
  return report;
}

namespace {

nlohmann::json stages_json(const std::vector<AttackStage>& stages) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& s : stages) {
    out.push_back({{"attack", s.attack},
                   {"attacked", s.attacked},
                   {"fooled", s.fooled},
                   {"gradient_evaluations", s.gradient_evaluations},
                   {"forward_evaluations", s.forward_evaluations},
                   {"forward_equivalents",
                    forward_equivalents(s.gradient_evaluations, s.forward_evaluations)},
                   {"seconds", s.seconds}});
  }
  return out;
}

}  // namespace

std::string to_json(const RobustnessReport& report) {
  nlohmann::json results = nlohmann::json::array();
  for (const auto& r : report.results) {
    results.push_back({{"attack", r.attack},
                       {"norm", r.norm},
                       {"eps", r.eps},
                       {"robust_accuracy", r.robust_accuracy},
                       {"attack_success_rate", r.attack_success_rate},
                       {"mean_linf", r.mean_linf},
                       {"max_linf", r.max_linf},
                       {"mean_l2", r.mean_l2},
                       {"max_l2", r.max_l2},
                       {"gradient_evaluations", r.gradient_evaluations},
                       {"forward_evaluations", r.forward_evaluations},
                       {"forward_equivalents",
                        forward_equivalents(r.gradient_evaluations, r.forward_evaluations)},
                       {"seconds", r.seconds},
                       {"samples_per_second", r.samples_per_second},
                       {"stages", stages_json(r.stages)}});
  }
  nlohmann::json worst = nlohmann::json::array();
  for (const auto& w : report.worst_case) {
    worst.push_back({{"eps", w.eps}, {"robust_accuracy", w.robust_accuracy}, {"attacks", w.attacks}});
  }
  nlohmann::json classes = nlohmann::json::array();
  for (const auto& c : report.per_class) {
    // NaN (a class without samples) becomes null.
    const auto number = [](double v) { return std::isnan(v) ? nlohmann::json() : nlohmann::json(v); };
    nlohmann::json robust = nlohmann::json::array();
    for (const double r : c.robust_accuracy) robust.push_back(number(r));
    classes.push_back({{"label", c.label},
                       {"name", c.name},
                       {"samples", c.samples},
                       {"clean_accuracy", number(c.clean_accuracy)},
                       {"worst_case_robust_accuracy", robust}});
  }
  const nlohmann::json j = {{"model", report.model},
                            {"data", report.data},
                            {"samples", report.samples},
                            {"clean_accuracy", report.clean_accuracy},
                            {"results", results},
                            {"worst_case", worst},
                            {"per_class", classes},
                            {"warnings", report.warnings},
                            {"seconds", report.seconds},
                            {"samples_per_second", report.samples_per_second}};
  return j.dump(2) + "\n";
}

std::string to_markdown(const RobustnessReport& report) {
  std::string out = fmt::format(
      "# Robustness report\n\n- model: `{}`\n- data: {} ({} samples)\n- clean accuracy: "
      "{:.2f}%\n- time: {:.1f} s\n\n| attack | norm | eps | robust accuracy | attack success | "
      "mean L∞ | mean L2 | samples/s |\n|---|---|---|---|---|---|---|---|\n",
      report.model, report.data, report.samples, 100 * report.clean_accuracy, report.seconds);
  for (const auto& r : report.results) {
    out += fmt::format("| {} | {} | {} | {:.2f}% | {:.2f}% | {:.4f} | {:.4f} | {:.0f} |\n",
                       r.attack, r.norm, r.eps, 100 * r.robust_accuracy,
                       100 * r.attack_success_rate, r.mean_linf, r.mean_l2, r.samples_per_second);
  }
  for (const auto& r : report.results) {
    if (r.stages.empty()) continue;
    out += fmt::format(
        "\n{} ({}, eps {}), by component:\n\n| component | attacked | fooled | forward "
        "equivalents | seconds |\n|---|---|---|---|---|\n",
        r.attack, r.norm, r.eps);
    for (const auto& s : r.stages) {
      out += fmt::format("| {} | {} | {} | {} | {:.1f} |\n", s.attack, s.attacked, s.fooled,
                         forward_equivalents(s.gradient_evaluations, s.forward_evaluations),
                         s.seconds);
    }
  }
  out += "\n| eps | worst-case robust accuracy | attacks |\n|---|---|---|\n";
  for (const auto& w : report.worst_case) {
    out += fmt::format("| {} | {:.2f}% | {} |\n", w.eps, 100 * w.robust_accuracy,
                       fmt::join(w.attacks, ", "));
  }
  if (!report.per_class.empty() && !report.worst_case.empty()) {
    out += "\nBy class (worst-case robust accuracy):\n\n| class | samples | clean |";
    std::string rule = "|---|---|---|";
    for (const auto& w : report.worst_case) {
      out += fmt::format(" eps {} |", w.eps);
      rule += "---|";
    }
    out += fmt::format("\n{}\n", rule);
    const auto percent = [](double v) {
      return std::isnan(v) ? std::string("—") : fmt::format("{:.1f}%", 100 * v);
    };
    for (const auto& c : report.per_class) {
      out += fmt::format("| {} | {} | {} |", c.name.empty() ? std::to_string(c.label) : c.name,
                         c.samples, percent(c.clean_accuracy));
      for (const double r : c.robust_accuracy) out += fmt::format(" {} |", percent(r));
      out += "\n";
    }
  }
  out += "\n## Sanity checks\n\n";
  if (report.warnings.empty()) out += "All passed.\n";
  for (const auto& w : report.warnings) out += "- WARNING: " + w + "\n";
  return out;
}

void write_report(const RobustnessReport& report, const std::filesystem::path& path) {
  write_text_atomically(path, path.extension() == ".json" ? to_json(report) : to_markdown(report));
}

}  // namespace bulwark
