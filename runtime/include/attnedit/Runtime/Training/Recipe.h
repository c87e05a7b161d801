//===- Recipe.h - what a training job runs, as JSON ------------*- C++ -*-===//
//
// A recipe is the stages of a job (objective, steps, optimiser schedule) and
// its batch shape. It is read from recipe.json, where fields left out keep
// their defaults and unknown fields are errors, and every field has a range.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_TRAINING_RECIPE_H
#define ATTNEDIT_RUNTIME_TRAINING_RECIPE_H

#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mlir::attnedit {

/// One stage of a recipe: its objective and its optimiser schedule.
struct StageRecipe {
  std::string stage = "layerwise"; // layerwise | model | lm
  int64_t steps = 100;
  double lr = 1e-3;
  int64_t warmup = 10;
  double minLrRatio = 0.1; // the cosine decays to lr * minLrRatio
  double weightDecay = 0.01; // decoupled, on matrices only
  double clip = 1.0;         // global gradient norm; 0 = off
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  // stage=model only.
  double temperature = 1.0;
  std::vector<int64_t> featureLayers;
  double featureWeight = 0.0;
  std::string train = "attention"; // attention | all
  // train=all only: the peak rate of the teacher's other weights (the copies
  // train=all adds), on the same schedule as `lr`, which then applies to the
  // edited attention alone. Unset: `lr` for every weight.
  std::optional<double> lrRest;
  // Under mpirun: "data" (every rank runs a share of the batch) or, for
  // stage=layerwise, "layers" (every rank runs the whole batch through a
  // share of the edited layers; README "Training on many processes").
  std::string parallel = "data";

  /// The learning rate of step `step` (0-based); of a teacher weight's copy
  /// under train=all if `teacherCopy` (lr_rest's schedule when it is set).
  double learningRate(int64_t step, bool teacherCopy = false) const;
  /// The options of --attnedit-build-distill for this stage, less teacher=.
  std::string buildOptions() const;
  llvm::json::Value toJson() const;
};

/// The most steps a stage (or its warm-up, or a checkpoint interval) may
/// have: 10^8, weeks of training even at the fastest step rates here.
constexpr int64_t kMaxSteps = 100000000;

struct Recipe {
  uint64_t seed = 0;
  int64_t batch = 8;   // sequences per step
  int64_t seqLen = 128; // tokens per sequence
  int64_t checkpointEvery = 50;
  /// A batch's gradient is summed in this many fixed groups of sequences
  /// (sequence k in group k % lanes), so that it is the same bit for bit on
  /// any number of threads or MPI ranks up to `lanes`.
  int64_t lanes = 4;
  std::vector<StageRecipe> stages;
  /// The recipe.json parse() read, for errors found once the model is known;
  /// empty for a built-in recipe. Not part of toJson: a copy elsewhere is
  /// the same recipe.
  std::string path;

  /// Reads a recipe.json; errors name the file and the field. Fields left
  /// out keep the values `defaults` has.
  static llvm::Expected<Recipe> parse(llvm::StringRef path, const Recipe &defaults);
  /// Checks ranges; errors name `where` (a file or "the default recipe").
  llvm::Error validate(llvm::StringRef where) const;
  /// Checks what depends on the model, before a job starts: feature_layers
  /// entries must be layers of a model with `numLayers` layers. Errors name
  /// `path` and the field as validate's do.
  llvm::Error validateForModel(int64_t numLayers) const;
  /// Checks that `ranks` (mpirun's) have a lane each in every stage that
  /// splits its batch's lanes among them (all but parallel "layers").
  llvm::Error checkRanks(int64_t ranks) const;
  llvm::json::Value toJson() const;
};

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_TRAINING_RECIPE_H
