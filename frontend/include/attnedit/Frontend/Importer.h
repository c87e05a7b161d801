//===- Importer.h - checkpoints to attnedit modules -----------*- C++ -*-===//
#ifndef ATTNEDIT_FRONTEND_IMPORTER_H
#define ATTNEDIT_FRONTEND_IMPORTER_H

#include "attnedit/Frontend/ModelConfig.h"
#include "attnedit/Frontend/WeightFile.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/Error.h"

namespace mlir::attnedit {

/// A model on disk, opened: configuration, weight files, tokenizer path.
struct Checkpoint {
  std::string source; // what the user named: a directory or a .bin
  ModelConfig config;
  std::vector<std::unique_ptr<WeightFile>> files;
  std::string tokenizerPath; // empty when none was found
  /// Only config.json was read: parameters are declared from the config's
  /// shapes (as `configOnlyDType`) with no files behind them, for analyses
  /// of models whose weights are not at hand (bf16) or models about to be
  /// trained from scratch (f32).
  bool configOnly = false;
  DType configOnlyDType = DType::BF16;

  const TensorInfo *find(llvm::StringRef name, const WeightFile **file = nullptr) const;
};

/// Opens an HF model directory (config.json + model.safetensors, or shards
/// listed in model.safetensors.index.json) or a llama2.c .bin checkpoint.
/// With `configOnly`, an HF directory needs config.json alone.
llvm::Expected<Checkpoint> openCheckpoint(llvm::StringRef path, bool configOnly = false);

/// Whether opening the model at `modelPath` (an HF directory or a llama2.c
/// checkpoint) reads, or would read, a file at `path`: its config, weights
/// or tokenizer. An output there would destroy or shadow one of them.
bool isReadByModelLoad(llvm::StringRef modelPath, llvm::StringRef path);

/// Emits `func.func @forward(%tokens: tensor<?xi32>, %positions: tensor<?xi32>)
/// -> tensor<?xVxf32>` as attnedit primitives over named parameters, after
/// checking that every tensor the architecture needs exists with its shape.
/// Module attributes record the parameter files, tokenizer and stop tokens.
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>> importCheckpoint(mlir::MLIRContext &context,
                                                                    const Checkpoint &checkpoint);

} // namespace mlir::attnedit

#endif // ATTNEDIT_FRONTEND_IMPORTER_H
