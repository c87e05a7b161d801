//===- Distiller.h - pretraining and progressive distillation --*- C++ -*-===//
//
// The jobs behind `attnedit-run train` and `attnedit-run distill`, and the
// module-level steps they are made of: raise the teacher, edit it into the
// student, and build a stage's differentiated training step, each as a pass
// pipeline over module copies; and the checked export of a module to a model
// directory.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_TRAINING_DISTILLER_H
#define ATTNEDIT_RUNTIME_TRAINING_DISTILLER_H

#include "attnedit/Frontend/ModelExport.h"
#include "attnedit/Runtime/Training/Trainer.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"

namespace mlir::attnedit {

/// Runs textual module passes ("pass-a{opt=1},pass-b") on `module`; the
/// error carries the passes' diagnostics, introduced by `what` (default:
/// the pipeline).
llvm::Error runPipeline(ModuleOp module, llvm::StringRef pipeline, llvm::StringRef what = {});

/// Writes `module` to `path` atomically (temporary file, fsync, rename).
llvm::Error writeModule(ModuleOp module, llvm::StringRef path);

/// The module's text hash and the size and content hash of each parameter
/// file it names: what a job's checkpoint records of a model. Contents, not
/// modification times, so that a copy of the same weights at the same path
/// (re-extracted, re-synced) still resumes; the run reads them anyway.
llvm::json::Value moduleIdentity(ModuleOp module);

/// A copy of `teacher` with attention raised (a no-op when it already is).
llvm::Expected<OwningOpRef<ModuleOp>> raisedCopy(ModuleOp teacher);

/// What exportChecked wrote and how closely the directory reproduces the
/// module.
struct CheckedExport {
  ExportSummary summary;
  double relativeError = 0; // max |dir - module| / max |module| over the logits
};

/// exportModel with values from `store`, attention raised first when it is
/// primitive, and the directory proven before it is renamed into place: it
/// is loaded back and its logits on a few ids below the vocabulary size
/// must match @forward's within `tolerance` (relative to the largest logit).
llvm::Expected<CheckedExport> exportChecked(ModuleOp module, ParameterStore &store,
                                            llvm::StringRef dir,
                                            const ExportOptions &options = {},
                                            double tolerance = 1e-4);

/// The options of an --edit string by name (a value may be quoted; a bare
/// name has the value ""). A name given twice is an error: the pass would
/// take the last without a word.
llvm::Expected<llvm::StringMap<std::string>> editOptionValues(llvm::StringRef editOptions);

/// The student: `teacher` edited with `editOptions` (the options of
/// --attnedit-edit-attention, e.g. "target=mla kv-lora-rank=16"), its new
/// parameters written to `paramsOut`.
llvm::Expected<OwningOpRef<ModuleOp>> editedCopy(ModuleOp teacher, llvm::StringRef editOptions,
                                                 llvm::StringRef paramsOut);

/// A copy of `student` with @train_step for `stageOptions` (the options of
/// --attnedit-build-distill) and its gradient @train_step_grad.
llvm::Expected<OwningOpRef<ModuleOp>> trainingCopy(ModuleOp student,
                                                   llvm::StringRef stageOptions);

class Model;

/// Where a job writes: `outDir` becomes a loadable model directory
/// (config.json, model.safetensors, tokenizer) with training_log.json and
/// training_loss.svg beside it; modules and checkpoints go to outDir/work.
struct JobOptions {
  std::string outDir;
  Recipe recipe;
  bool resume = false;
  unsigned threads = 0; // TrainingRun::threads
};

/// Trains `model` (an imported @forward whose parameters have no values yet:
/// they start random) from scratch on next-token cross entropy (every stage
/// of the recipe must be `lm`), then writes it to options.outDir. `config`,
/// the JSON the model was built from if any, joins the job's record, so a
/// resume with another one is refused naming the fields that changed.
llvm::Error pretrain(ModuleOp model, TokenSource &data, const JobOptions &options,
                     llvm::json::Value config = nullptr);

/// Progressive distillation: raises `teacher`, edits a copy with
/// `editOptions` (the options of --attnedit-edit-attention), trains the
/// student through the recipe's stages (layerwise, model) on `data`, and
/// writes it to options.outDir.
llvm::Error distill(Model &teacher, llvm::StringRef editOptions, TokenSource &data,
                    const JobOptions &options);

/// The wall seconds the job that wrote `outDir` has trained, added up over
/// its runs (a resumed job counts the time before its kill):
/// training_log.json's train_seconds.
llvm::Expected<double> trainSeconds(llvm::StringRef outDir);

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_TRAINING_DISTILLER_H
