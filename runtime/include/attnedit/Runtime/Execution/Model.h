//===- Model.h - a loaded model ready to run ------------------*- C++ -*-===//
#ifndef ATTNEDIT_RUNTIME_EXECUTION_MODEL_H
#define ATTNEDIT_RUNTIME_EXECUTION_MODEL_H

#include "attnedit/Frontend/Tokenizer.h"
#include "attnedit/Runtime/Execution/Evaluator.h"
#include "attnedit/Runtime/Execution/Executor.h"
#include "attnedit/Runtime/Execution/ParameterStore.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"

#include <optional>

namespace mlir::attnedit {

/// An error naming the first NaN or infinity in `logits` (rows of `vocab`
/// for one model call), for `what`: a token drawn, or a figure scored, from
/// them would be garbage with no sign of it.
llvm::Error requireFiniteLogits(llvm::ArrayRef<float> logits, int64_t vocab,
                                llvm::StringRef what);

class Model {
public:
  /// Loads an HF model directory, a llama2.c .bin, or an attnedit .mlir
  /// module (whose parameter files and tokenizer are named in its attributes).
  /// `tokenizerPath`, when not empty, overrides the tokenizer found there.
  static llvm::Expected<std::unique_ptr<Model>> load(llvm::StringRef path,
                                                     llvm::StringRef tokenizerPath = "");

  /// The weight and tokenizer files the module at `path` (.mlir or an
  /// attnedit-compile artifact) names, resolved; empty for other models and
  /// for a module that does not parse (loading it reports why). An output
  /// written over one would destroy what the module reads.
  static std::vector<std::string> filesNamedBy(llvm::StringRef path);

  /// Logits [T, vocab] for `tokens` at positions 0..T-1.
  llvm::Expected<Tensor> forward(llvm::ArrayRef<int32_t> tokens);
  /// The results of `@name(tokens, positions 0..T-1)`, e.g. a training step;
  /// of `@name(tokens[:-1], positions, tokens[1:])` for a function of three
  /// arguments (a stage=lm step, whose third is the next-token targets).
  llvm::Expected<std::vector<Tensor>> call(llvm::StringRef name,
                                           llvm::ArrayRef<int32_t> tokens);

  int64_t vocabSize() const { return vocab; }
  int64_t maxPositions() const { return maxLength; }
  std::optional<int32_t> bosToken() const { return bos; }
  llvm::ArrayRef<int32_t> stopTokens() const { return stops; }
  /// The checkpoint's generation_config.json sampling settings
  /// (attrs::kSamplingDefaults); null when it names none.
  mlir::DictionaryAttr samplingDefaults() const { return sampling; }
  /// The model's tokenizer, loaded on first use; null when it has none.
  llvm::Expected<const Tokenizer *> tokenizer();
  /// Its file; empty when it has none.
  llvm::StringRef tokenizerPath() const { return tokenizerFile; }
  mlir::ModuleOp module() { return *moduleOp; }
  /// Runs this model on the reference interpreter with `options`, whatever
  /// the default backend is (the options are the interpreter's own).
  void setEvaluatorOptions(EvaluatorOptions options) {
    ownExecutor = createReferenceExecutor(options);
  }
  /// The executor calls run on: the one set here, else defaultExecutor().
  Executor &executor() { return ownExecutor ? *ownExecutor : defaultExecutor(); }
  void setExecutor(std::unique_ptr<Executor> e) { ownExecutor = std::move(e); }
  /// Where the module's parameters resolve (its files, memory-mapped).
  ParameterStore &parameterStore() { return parameters; }

private:
  Model() = default;
  llvm::Error configure(llvm::StringRef tokenizerPath);

  std::unique_ptr<mlir::MLIRContext> context;
  mlir::OwningOpRef<mlir::ModuleOp> moduleOp;
  mlir::func::FuncOp forwardFunc;
  ParameterStore parameters;
  std::unique_ptr<Executor> ownExecutor;
  std::string tokenizerFile;
  std::unique_ptr<Tokenizer> tok;
  int64_t vocab = 0;
  int64_t maxLength = 0;
  std::optional<int32_t> bos;
  std::vector<int32_t> stops;
  mlir::DictionaryAttr sampling;
};

/// Writes a float32 tensor as a NumPy .npy file.
llvm::Error writeNpy(llvm::StringRef path, const Tensor &tensor);

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_EXECUTION_MODEL_H
