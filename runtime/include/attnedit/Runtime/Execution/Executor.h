//===- Executor.h - one interface for every way of running IR -*- C++ -*-===//
//
// The trainer, the generator and the evaluation code run functions through an
// Executor and never know which implementation runs: the reference
// interpreter (the oracle, runtime/lib/execution/Evaluator.cpp), compiled
// CPU code (backends/cpu, JIT through MLIR's ExecutionEngine, or an
// attnedit-compile artifact) or the Ascend simulator (backends/ascend).
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_EXECUTION_EXECUTOR_H
#define ATTNEDIT_RUNTIME_EXECUTION_EXECUTOR_H

#include "attnedit/Runtime/Execution/Evaluator.h"
#include "attnedit/Runtime/Execution/ParameterStore.h"
#include "attnedit/Runtime/Execution/Tensor.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/Error.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlir::attnedit {

class Executor {
public:
  virtual ~Executor();

  /// Runs `func` (a function of an attnedit module) on `args`, resolving its
  /// `attnedit.param` names in `parameters`. Safe to call from several
  /// threads at once.
  virtual llvm::Expected<std::vector<Tensor>>
  run(func::FuncOp func, llvm::ArrayRef<Tensor> args, ParameterStore &parameters) = 0;

  /// Runs the function `name` of `module`.
  llvm::Expected<std::vector<Tensor>> run(ModuleOp module, llvm::StringRef name,
                                          llvm::ArrayRef<Tensor> args,
                                          ParameterStore &parameters);

  /// Compiles `functions` before their first run, several at once where the
  /// backend compiles (the interpreter has nothing to do). A function that
  /// fails to compile says so when it runs.
  virtual void prepare(llvm::ArrayRef<func::FuncOp> functions) {}

  /// "reference", "cpu" or "ascend-sim", as `--backend` names it.
  virtual llvm::StringRef backend() const = 0;

  /// Whether several sequences packed into one call (causal masks with
  /// `segments`) run faster here than one by one. The trainer packs only
  /// then: the interpreter would compute the masked-out blocks of the
  /// packed T×T scores, and the Ascend kernels have no packed mask.
  virtual bool prefersPackedSequences() const { return false; }
};

/// The reference interpreter behind the Executor interface.
std::unique_ptr<Executor> createReferenceExecutor(EvaluatorOptions options = {});

/// The compiled CPU backend (backends/cpu): each function is lowered to LLVM
/// and JIT-compiled on first use, then kept, keyed by a hash of its text, the
/// pipeline and the host CPU: in memory, and as object code in `cacheDir`
/// (default: $ATTNEDIT_CACHE_DIR, else ~/.cache/attnedit/cpu; "" = no disk
/// cache) so a second run compiles nothing.
std::unique_ptr<Executor>
createCompiledExecutor(std::optional<std::string> cacheDir = std::nullopt);

/// The disk cache's bound: $ATTNEDIT_CACHE_MAX_SIZE, bytes with an optional
/// K, M or G suffix; 1G when unset, as ccache bounds its own cache. A bad
/// value fails the first function that would use the disk cache.
llvm::Expected<uint64_t> compiledCacheLimit();

/// attnedit-compile: compiles every function of `module` for this CPU into
/// the directory `path` (the artifact): one object per function, the module
/// (`compiledModelModule(path)`, which names the parameter files: weights
/// stay outside) and `manifest.aexm` (runtime/schema/compiled_model.fbs:
/// entry points, argument and result shapes, the parameters bound by name,
/// the host CPU, and what the sources were: the module, its weight files'
/// structure and `configFiles`, checked when the artifact is opened), written
/// last. Refuses what checkCompiledModelOutput does.
llvm::Error writeCompiledModel(ModuleOp module, llvm::StringRef path,
                               llvm::ArrayRef<std::string> configFiles = {});

/// Whether an artifact may be written at `path`: a path that does not exist,
/// an empty directory or an earlier artifact (replaced whole once the new
/// one is complete). A file, or a directory holding anything else (a model
/// directory), is refused, before compiling, rather than written among, and
/// so is a directory the artifact cannot be built beside (its parent
/// directories are created).
llvm::Error checkCompiledModelOutput(llvm::StringRef path);

/// This machine's physical memory: what a job may plan to use at most (Linux
/// overcommits, so a larger allocation succeeds and the OOM killer, or a
/// fault in compiled code under a ulimit, ends the job later).
double physicalMemoryBytes();

/// Whether `path` is an artifact directory written by writeCompiledModel.
bool isCompiledModel(llvm::StringRef path);

/// The module inside the artifact at `path`.
std::string compiledModelModule(llvm::StringRef path);

/// An executor running the artifact at `path` without compiling anything:
/// it refuses a manifest of another format or compiled for another CPU (or
/// LLVM), one whose parameters `parameters` do not hold with the compiled
/// shapes, and any function whose text is not one it compiled.
llvm::Expected<std::unique_ptr<Executor>> openCompiledModel(llvm::StringRef path,
                                                            ParameterStore &parameters);

/// The Ascend simulator (backends/ascend): ops with an Ascend lowering run
/// as kernels of `target` (a built-in name or a JSON path) in the functional
/// simulator, with `dtype` ("bf16", "f16" or "f32") Cube operands; the
/// others run on the reference evaluator, counted in the log.
llvm::Expected<std::unique_ptr<Executor>> createAscendSimExecutor(llvm::StringRef target = "910b",
                                                                  llvm::StringRef dtype = "bf16");

/// The backend names `--backend` accepts.
llvm::ArrayRef<llvm::StringRef> backendNames();

/// The executor the runtime uses when a caller names none: the reference
/// interpreter until setDefaultBackend chooses another.
Executor &defaultExecutor();
/// Options of the backends that take any.
struct BackendOptions {
  std::string ascendTarget = "910b";
  std::string ascendDtype = "bf16";
};
/// Chooses the default executor by name; an unknown name is an error that
/// lists the known ones.
llvm::Error setDefaultBackend(llvm::StringRef name, const BackendOptions &options = {});
/// The default executor's backend as a user names it ("cpu", "ascend-sim
/// 910b bf16"): a checkpoint records it.
std::string defaultBackendName();

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_EXECUTION_EXECUTOR_H
