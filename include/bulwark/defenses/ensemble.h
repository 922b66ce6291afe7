#pragma once
/// @file
/// Ensembles of classifiers that are themselves a `Model`, so every attack can attack the
/// ensemble as one model; and the figures that say how diverse the members are.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bulwark/attacks/attack.h"
#include "bulwark/core/model.h"
#include "bulwark/data/dataset.h"

namespace bulwark {

enum class EnsembleMode {
  MeanLogits,         ///< the mean of the members' logits
  MeanProbabilities,  ///< log of the mean of the members' softmax (softmax of it = the mean)
  Vote,               ///< the fraction of members voting for each class (no gradient)
};

/// "mean-logits", "mean-probabilities" or "vote". @throws Error otherwise.
EnsembleMode parse_ensemble_mode(std::string_view text);
std::string to_string(EnsembleMode mode);

/// A model whose output combines the members' (see EnsembleMode). Majority vote breaks ties
/// towards the lower class index, as argmax does; it has no gradient, so attack a vote through
/// the mean-probabilities ensemble of the same members (what the vote follows). An ensemble of
/// one member in mean-logits mode is that member.
/// @throws Error when `members` is empty; its forward throws when the members' outputs differ
/// in shape (naming the member and both shapes).
Model make_ensemble(std::vector<Model> members, EnsembleMode mode = EnsembleMode::MeanLogits);

/// How the members differ on a dataset, and what that buys against attacks.
struct EnsembleDiversity {
  std::vector<std::string> members;
  std::vector<double> clean_accuracy;  ///< per member
  double ensemble_clean_accuracy = 0;
  /// agreement[i][j]: fraction of images on which members i and j predict the same class.
  std::vector<std::vector<double>> agreement;
  /// transfer[i][j]: of the images that the attack made on member i fooled member i with,
  /// the fraction that also fool member j (1 on the diagonal; NaN when i was never fooled).
  std::vector<std::vector<double>> transfer;
  /// Accuracy of the ensemble on the examples made on each member (transfer attacks).
  std::vector<double> ensemble_accuracy_under_transfer;
  /// Accuracy of the ensemble under the same attack run through the ensemble itself (the
  /// adaptive attack); at most the transfer figures when the attack is sound.
  double ensemble_robust_accuracy = 0;
  int64_t samples = 0;
};

/// Measures `members` and their ensemble on `data` with `attack` (e.g. PGD). Every image is
/// attacked, correctly classified or not, so the transfer rates compare like with like.
/// @throws Error when there are fewer than two members or data is empty.
EnsembleDiversity ensemble_diversity(const std::vector<Model>& members, EnsembleMode mode,
                                     const Dataset& data, Attack& attack,
                                     int64_t batch_size = 256);

}  // namespace bulwark
