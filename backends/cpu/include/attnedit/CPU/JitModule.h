//===- JitModule.h - LLVM-dialect modules compiled for this host -*- C++ -*-===//
//
// A module lowered by attnedit-cpu-pipeline, JIT-compiled through MLIR's
// ExecutionEngine for the host CPU (name and features from detectHost(), as
// cpu-codegen.md §2 recommends: the engine's own jitCodeGenOptLevel is
// ignored in MLIR 19), with the GEMM shims bound as host symbols. Its object
// code can be written to a file and loaded back into a fresh ORC JIT by a
// later process (the on-disk compilation cache), so a second run compiles
// nothing.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_CPU_JITMODULE_H
#define ATTNEDIT_CPU_JITMODULE_H

#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <memory>
#include <string>

namespace mlir::attnedit::cpu {

class JitModule {
public:
  /// Compiles `module` (LLVM dialect) at -O2 for the host. With
  /// `keepObject`, the object code of `entry` and everything it calls is
  /// also kept for takeObject(): the caller writes it (the cache, an
  /// artifact) and hashes the bytes it wrote, never a file someone else may
  /// have put at the destination.
  static llvm::Expected<std::unique_ptr<JitModule>>
  create(ModuleOp module, llvm::StringRef entry = "", bool keepObject = false);

  /// The object code create() kept (once), or why there is none.
  llvm::Expected<std::string> takeObject();

  /// Loads an object file written by create() on this host.
  static llvm::Expected<std::unique_ptr<JitModule>> load(llvm::StringRef objectPath);

  /// Calls `_mlir_ciface_<name>`: `args` are its pointer arguments (for a
  /// function with results, first the pointer to the results' descriptors).
  /// Fails when the compiled code refused its operands: checkSegments (its
  /// results are then still allocated, and meaningless) or a size check of
  /// LowerPrimitives.cpp (the call stopped there; no results).
  llvm::Error call(llvm::StringRef name, llvm::ArrayRef<void *> args);

  /// What compiled code depends on besides the IR: LLVM version, target
  /// triple, CPU name and features. Part of every cache key.
  static std::string hostFingerprint();

private:
  std::unique_ptr<ExecutionEngine> engine;
  std::unique_ptr<llvm::orc::LLJIT> loaded;
  std::string object, objectError;
};

/// Whether a causal mask of `queries` x `keys` splits into `segments` packed
/// sequences, as the reference evaluator checks it. When not, the compiled
/// call running on this thread fails once it returns (JitModule::call):
/// compiled code and its kernels cannot return an error, so they check
/// here and skip the work.
bool checkSegments(int64_t queries, int64_t keys, int64_t segments);

/// Whether a fused attention chain's operands fit each other, as the
/// reference evaluator checks its matmuls and mask: queries as wide as the
/// keys, as many values as keys, and with a causal mask no more queries
/// than keys. When not, the call fails as checkSegments says; the chain's
/// sizes are dynamic in a hand-written module, where the verifier saw none.
bool checkAttentionSizes(int64_t queries, int64_t keys, int64_t values, int64_t queryWidth,
                         int64_t keyWidth, bool causal);

/// Frees a buffer compiled code allocated (a result handed to the caller).
/// Compiled code's malloc keeps its largest freed blocks for reuse, so its
/// buffers must come back through here rather than std::free.
void freeCompiledBuffer(void *block);

/// The names and addresses of the GEMM shims (GemmLibrary.cpp) that
/// `attnedit-cpu-library-calls` calls, as `_mlir_ciface_attnedit_cpu_*`.
llvm::ArrayRef<std::pair<const char *, void *>> gemmSymbols();

/// The fused attention kernels (AttentionLibrary.cpp), likewise.
llvm::ArrayRef<std::pair<const char *, void *>> attentionSymbols();

/// The paged KV-cache kernels (CacheLibrary.cpp), likewise.
llvm::ArrayRef<std::pair<const char *, void *>> cacheSymbols();

/// The address of the kernel compiled code calls as `name`
/// (`_mlir_ciface_attnedit_cpu_*`, one of the above), or null: how tests and
/// benches call a kernel directly.
void *librarySymbol(llvm::StringRef name);

} // namespace mlir::attnedit::cpu

#endif // ATTNEDIT_CPU_JITMODULE_H
