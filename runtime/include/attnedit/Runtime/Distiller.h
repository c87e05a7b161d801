//===- Distiller.h - the conversion pipeline up to training ---*- C++ -*-===//
//
// The module-level steps of `attnedit-run distill`: raise the teacher, edit
// it into the student, and build a stage's differentiated training step,
// each as a pass pipeline over modules written to the output directory.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_DISTILLER_H
#define ATTNEDIT_RUNTIME_DISTILLER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/Error.h"

namespace mlir::attnedit {

/// Runs a textual pass pipeline ("builtin.module(...)") on `module`; the
/// error carries the passes' diagnostics.
llvm::Error runPipeline(ModuleOp module, llvm::StringRef pipeline);

/// Writes `module` to `path` atomically (temporary file, then rename).
llvm::Error writeModule(ModuleOp module, llvm::StringRef path);

/// A copy of `teacher` with attention raised (a no-op when it already is).
llvm::Expected<OwningOpRef<ModuleOp>> raisedCopy(ModuleOp teacher);

/// The student: `teacher` edited with `editOptions` (the options of
/// --attnedit-edit-attention, e.g. "target=mla kv-lora-rank=16"), its new
/// parameters written to `paramsOut`.
llvm::Expected<OwningOpRef<ModuleOp>> editedCopy(ModuleOp teacher, llvm::StringRef editOptions,
                                                 llvm::StringRef paramsOut);

/// A copy of `student` with @train_step for `stageOptions` (the options of
/// --attnedit-build-distill) and its gradient @train_step_grad.
llvm::Expected<OwningOpRef<ModuleOp>> trainingCopy(ModuleOp student,
                                                   llvm::StringRef stageOptions);

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_DISTILLER_H
