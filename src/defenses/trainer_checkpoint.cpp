// Checkpoints of training: written atomically after every epoch, with the model, the optimizer,
// the random state, the history, the best epoch's weights and the privacy spent; resume()
// checks everything before it changes anything.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <string>

#include "bulwark/core/files.h"
#include "core/check.h"
#include "core/torch_errors.h"
#include "defenses/trainer_state.h"

namespace bulwark {
namespace detail {

std::vector<std::pair<std::string, at::Tensor>> named_state(const Model& model) {
  std::vector<std::pair<std::string, at::Tensor>> state;
  if (const auto module = model.module()) {
    for (const auto& p : module->named_parameters()) state.emplace_back("parameter " + p.key(), p.value());
    for (const auto& b : module->named_buffers()) state.emplace_back("buffer " + b.key(), b.value());
  } else {
    const auto params = model.parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      state.emplace_back(fmt::format("parameter {}", i), params[i]);
    }
  }
  return state;
}

std::vector<at::Tensor> copy_state(const Model& model) {
  std::vector<at::Tensor> copies;
  for (const auto& [name, t] : named_state(model)) copies.push_back(t.detach().clone());
  return copies;
}

void load_state(const Model& model, const std::vector<at::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  const auto state = named_state(model);
  for (size_t i = 0; i < state.size(); ++i) state[i].second.copy_(tensors[i]);
}

}  // namespace detail

namespace {

using detail::load_state;
using detail::named_state;

constexpr const char* kCheckpointFormat = "bulwark-checkpoint-1";

nlohmann::json to_json(const EpochMetrics& m) {
  return {{"epoch", m.epoch},
          {"train_loss", m.train_loss},
          {"train_accuracy", m.train_accuracy},
          {"seconds", m.seconds},
          {"samples_per_second", m.samples_per_second},
          {"learning_rate", m.learning_rate},
          {"eps", m.eps},
          {"epsilon", m.epsilon},
          {"clipped_fraction", m.clipped_fraction},
          {"clean_accuracy", m.clean_accuracy},
          {"robust_accuracy", m.robust_accuracy},
          {"eval_seconds", m.eval_seconds},
          {"best", m.best}};
}

EpochMetrics epoch_from_json(const nlohmann::json& j) {
  EpochMetrics m;
  m.epoch = j.at("epoch").get<int64_t>();
  m.train_loss = j.at("train_loss").get<double>();
  m.train_accuracy = j.at("train_accuracy").get<double>();
  m.seconds = j.at("seconds").get<double>();
  m.samples_per_second = j.at("samples_per_second").get<double>();
  m.learning_rate = j.at("learning_rate").get<double>();
  m.eps = j.at("eps").get<double>();
  m.epsilon = j.value("epsilon", -1.0);
  m.clipped_fraction = j.value("clipped_fraction", -1.0);
  m.clean_accuracy = j.at("clean_accuracy").get<double>();
  m.robust_accuracy = j.at("robust_accuracy").get<double>();
  m.eval_seconds = j.at("eval_seconds").get<double>();
  m.best = j.at("best").get<bool>();
  return m;
}


}  // namespace

void Trainer::write_checkpoint(const std::filesystem::path& path) const {
  torch::serialize::OutputArchive archive;
  const auto state = named_state(model_);
  std::string names;
  for (size_t i = 0; i < state.size(); ++i) {
    names += state[i].first + "\n";
    archive.write(fmt::format("tensor_{}", i), state[i].second.detach());
    if (!state_->best.empty()) archive.write(fmt::format("best_{}", i), state_->best[i]);
  }
  torch::serialize::OutputArchive optimizer;
  state_->optimizer->save(optimizer);
  archive.write("optimizer", optimizer);
  nlohmann::json history = nlohmann::json::array();
  for (const auto& m : history_) history.push_back(to_json(m));
  archive.write("format", c10::IValue(std::string(kCheckpointFormat)));
  archive.write("names", c10::IValue(names));
  archive.write("model_name", c10::IValue(model_.name()));
  archive.write("next_epoch", c10::IValue(state_->next_epoch));
  archive.write("has_best", c10::IValue(!state_->best.empty()));
  archive.write("best_epoch", c10::IValue(best_epoch_));
  archive.write("best_score", c10::IValue(state_->best_score));
  archive.write("history", c10::IValue(history.dump()));
  archive.write("rng", at::detail::getDefaultCPUGenerator().get_state());
  if (state_->dp) {
    archive.write("dp_steps", c10::IValue(state_->accountant->steps()));
    archive.write("dp_sigma", c10::IValue(state_->dp->options().noise_multiplier()));
    archive.write("dp_rate", c10::IValue(state_->sample_rate));
    archive.write("dp_stopped", c10::IValue(state_->stopped));
  }
  write_file_atomically(path, [&](const std::filesystem::path& tmp) {
    try {
      archive.save_to(tmp.string());
    } catch (const c10::Error& e) {
      throw Error(fmt::format("Trainer: writing the checkpoint '{}' failed: {}", path.string(),
                              e.what_without_backtrace()));
    }
  });
}

void Trainer::resume(const std::filesystem::path& checkpoint) {
  const auto where = fmt::format("Trainer::resume: checkpoint '{}'", checkpoint.string());
  BULWARK_CHECK(std::filesystem::is_regular_file(checkpoint), "{} does not exist or is not a file",
                where);
  torch::serialize::InputArchive archive;
  c10::IValue format, names, next_epoch, has_best, best_epoch, best_score, history;
  c10::IValue dp_steps, dp_sigma, dp_rate, dp_stopped;
  try {
    archive.load_from(checkpoint.string(), model_.device());
    BULWARK_CHECK(archive.try_read("format", format) && format.isString() &&
                      format.toStringRef() == kCheckpointFormat,
                  "{} is not a Bulwark training checkpoint", where);
    archive.read("names", names);
    archive.read("next_epoch", next_epoch);
    archive.read("has_best", has_best);
    archive.read("best_epoch", best_epoch);
    archive.read("best_score", best_score);
    archive.read("history", history);
    if (state_->dp) {
      BULWARK_CHECK(archive.try_read("dp_steps", dp_steps) && archive.try_read("dp_sigma", dp_sigma) &&
                        archive.try_read("dp_rate", dp_rate) &&
                        archive.try_read("dp_stopped", dp_stopped),
                    "{} was not written by differentially private training, so the privacy "
                    "already spent is unknown",
                    where);
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(fmt::format("{} is corrupt or not a Bulwark training checkpoint: {}", where,
                            detail::torch_error_reason(e)));
  }
  // Everything is read and checked before anything is changed.
  const auto state = named_state(model_);
  std::string expected;
  for (const auto& [name, t] : state) expected += name + "\n";
  const auto& saved = names.toStringRef();
  BULWARK_CHECK(saved == expected,
                "{} holds the weights of another architecture than '{}' ({} tensors named "
                "differently from the model's {})",
                where, model_.name(), std::count(saved.begin(), saved.end(), '\n'), state.size());
  std::vector<at::Tensor> tensors(state.size()), best;
  at::Tensor rng;
  try {
    archive.read("rng", rng);
    for (size_t i = 0; i < state.size(); ++i) {
      archive.read(fmt::format("tensor_{}", i), tensors[i]);
      BULWARK_CHECK(tensors[i].sizes() == state[i].second.sizes(),
                    "{} holds another architecture: '{}' has shape {} in the checkpoint and {} "
                    "in the model",
                    where, state[i].first, detail::shape_string(tensors[i]),
                    detail::shape_string(state[i].second));
      if (has_best.toBool()) {
        best.emplace_back();
        archive.read(fmt::format("best_{}", i), best.back());
      }
    }
  } catch (const c10::Error& e) {
    throw Error(fmt::format("{} is corrupt: {}", where, e.what_without_backtrace()));
  }
  std::vector<EpochMetrics> restored;
  try {
    for (const auto& j : nlohmann::json::parse(history.toStringRef())) {
      restored.push_back(epoch_from_json(j));
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{} has a corrupt history: {}", where, e.what()));
  }
  try {
    torch::serialize::InputArchive optimizer;
    archive.read("optimizer", optimizer);
    state_->optimizer->load(optimizer);
  } catch (const c10::Error& e) {
    throw Error(fmt::format("{}: the optimizer state does not fit (another optimizer?): {}", where,
                            e.what_without_backtrace()));
  }
  load_state(model_, tensors);
  auto global_generator = at::detail::getDefaultCPUGenerator();
  global_generator.set_state(rng.cpu());
  state_->next_epoch = next_epoch.toInt();
  state_->best = std::move(best);
  state_->best_score = best_score.toDouble();
  best_epoch_ = best_epoch.toInt();
  history_ = std::move(restored);
  if (state_->dp) {
    state_->sample_rate = dp_rate.toDouble();
    state_->dp->set_noise_multiplier(dp_sigma.toDouble());
    state_->calibrated = true;
    state_->stopped = dp_stopped.toBool();
    state_->accountant = make_accountant(options_.privacy().accountant());
    if (dp_steps.toInt() > 0) {
      state_->accountant->step(dp_sigma.toDouble(), state_->sample_rate, dp_steps.toInt());
    }
  }
}

}  // namespace bulwark
