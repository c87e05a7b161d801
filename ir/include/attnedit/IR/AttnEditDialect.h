//===- AttnEditDialect.h - attnedit dialect -------------------*- C++ -*-===//
#ifndef ATTNEDIT_IR_ATTNEDITDIALECT_H
#define ATTNEDIT_IR_ATTNEDITDIALECT_H

#include "mlir/IR/Dialect.h"

#include <optional>
#include <string>

#include "attnedit/IR/AttnEditDialect.h.inc"

namespace mlir::attnedit::attrs {
/// Module attributes naming what an attnedit module runs with. Parameter
/// paths that are relative are relative to the module file.
inline constexpr llvm::StringLiteral kParameterFiles = "attnedit.parameter_files";
/// {scope = [files]}: where `attnedit.param ... in "scope"` names resolve.
inline constexpr llvm::StringLiteral kParameterScopes = "attnedit.parameter_scopes";
inline constexpr llvm::StringLiteral kTokenizer = "attnedit.tokenizer";
inline constexpr llvm::StringLiteral kBosToken = "attnedit.bos_token_id";
/// The bos_token_id a config names that the model's text does not start
/// with (Qwen's): kept for export, never prepended.
inline constexpr llvm::StringLiteral kConfigBosToken = "attnedit.config_bos_token_id";
inline constexpr llvm::StringLiteral kStopTokens = "attnedit.stop_token_ids";
/// {do_sample, temperature, top_k, top_p, min_p, repetition_penalty}: the
/// sampling settings of the checkpoint's generation_config.json, each only
/// where it names one; what generation defaults to.
inline constexpr llvm::StringLiteral kSamplingDefaults = "attnedit.sampling_defaults";
inline constexpr llvm::StringLiteral kArchitecture = "attnedit.architecture";
inline constexpr llvm::StringLiteral kMaxPositions = "attnedit.max_positions";
/// On an attnedit.param: a student copy of a teacher weight that
/// --attnedit-build-distill train=all made trainable (the trainer gives
/// these a recipe's lr_rest).
inline constexpr llvm::StringLiteral kTeacherCopy = "attnedit.teacher_copy";
} // namespace mlir::attnedit::attrs

namespace mlir::attnedit {
/// The file `module` was parsed from (its location), or "" for a module
/// built in memory.
llvm::StringRef moduleFileOf(Operation *module);
/// A file `module` names (a weight file, its tokenizer) as it means it: a
/// relative path is relative to the folder of the file the module was parsed
/// from (its location), so a module reads the same files from any working
/// directory.
std::string resolveModulePath(Operation *module, llvm::StringRef path);
/// Rewrites the files `module` names as absolute paths (resolveModulePath,
/// then the working directory), for a copy of it written in another folder.
void anchorModulePaths(Operation *module);
/// Every weight file `module` names, resolved: its parameter_files, then
/// each scope's.
llvm::SmallVector<std::string> parameterFilesOf(Operation *module);
/// Whether `value` fits sampling setting `key` (generation_config.json's
/// names, do_sample aside): std::nullopt, else what is wrong ("must be in
/// (0, 1]", "is not a sampling setting"), for messages naming the field.
std::optional<std::string> checkSamplingSetting(llvm::StringRef key, double value);
/// Whether sampling setting `key` takes whole numbers (top_k, max_new_tokens).
inline bool isIntegerSamplingSetting(llvm::StringRef key) {
  return key == "top_k" || key == "max_new_tokens";
}
/// "[2, ?, 8]": a shape in a message, "?" for a dynamic size.
std::string formatShape(llvm::ArrayRef<int64_t> shape);
} // namespace mlir::attnedit

#endif // ATTNEDIT_IR_ATTNEDITDIALECT_H
