//===- JitModule.cpp - ExecutionEngine for the host CPU ---------------------===//

#include "attnedit/CPU/JitModule.h"

#include "mlir/ExecutionEngine/CRunnerUtils.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/ExecutionEngine/Orc/Mangling.h"
#include "llvm/Support/TargetSelect.h"

#include <mutex>

using namespace mlir;
using namespace mlir::attnedit;

llvm::Expected<std::unique_ptr<cpu::JitModule>> cpu::JitModule::create(ModuleOp module) {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
  });
  // The host's CPU name and every feature it has (AVX-512 here); the opt
  // level set on the machine, since ExecutionEngineOptions'
  // jitCodeGenOptLevel does nothing in 19 (cpu-codegen.md §2).
  auto builder = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!builder)
    return builder.takeError();
  // -O2, not -O3: GEMMs run in BLAS, and on a whole model's one function
  // (stories260K: ~10k lines of LLVM IR) -O3 with AVX-512 spent 13 s in
  // opt + llc against 3.7 s at -O2 (measured with opt-19/llc-19 here).
  builder->setCodeGenOptLevel(llvm::CodeGenOptLevel::Default);
  auto machine = builder->createTargetMachine();
  if (!machine)
    return machine.takeError();
  ExecutionEngineOptions options;
  options.transformer = makeOptimizingTransformer(2, 0, machine->get());
  auto engine = ExecutionEngine::create(module, options, std::move(*machine));
  if (!engine)
    return engine.takeError();
  (*engine)->registerSymbols([](llvm::orc::MangleAndInterner interner) {
    llvm::orc::SymbolMap map;
    for (auto [name, address] : gemmSymbols())
      map[interner(name)] = {llvm::orc::ExecutorAddr::fromPtr(address),
                             llvm::JITSymbolFlags::Exported};
    // Copies between differently laid out memrefs (bufferization's
    // memref.copy) call MLIR's C runner utility.
    map[interner("memrefCopy")] = {llvm::orc::ExecutorAddr::fromPtr(&memrefCopy),
                                   llvm::JITSymbolFlags::Exported};
    return map;
  });
  std::unique_ptr<JitModule> jit(new JitModule());
  jit->engine = std::move(*engine);
  return jit;
}

llvm::Error cpu::JitModule::call(llvm::StringRef name, llvm::ArrayRef<void *> args) {
  // The packed wrapper takes one pointer per argument, each pointing at the
  // argument's value (here itself a pointer).
  llvm::SmallVector<void *> packed;
  llvm::SmallVector<void *> values(args.begin(), args.end());
  for (void *&v : values)
    packed.push_back(&v);
  return engine->invokePacked(("_mlir_ciface_" + name).str(), packed);
}
