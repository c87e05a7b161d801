//===- AscendSimExecutor.cpp - running functions on the Ascend simulator ---===//
//
// `--backend=ascend-sim`: each function is decomposed into primitives
// (composite attention ops become their matmul / softmax chains, which the
// Ascend lowering fuses back into flash kernels where it can), then run op
// by op: every op with an Ascend lowering goes through its kernels in the
// functional simulator (backends/ascend OpSimulator: hardware numerics and
// hazard checks), every other op through the reference evaluator's kernel.
// The first run of each function logs how many ops took which path, so a
// figure from this backend never hides what it did not simulate; with
// ATTNEDIT_ASCEND_FALLBACK=refuse an op without a lowering is an error
// instead (tests use it to prove a whole step ran on the simulated device).
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/FusedAttention.h"
#include "attnedit/Ascend/OpSimulator.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Runtime/Execution/Executor.h"
#include "attnedit/Runtime/Training/Distiller.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/OperationSupport.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringExtras.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <map>
#include <mutex>

using namespace mlir;
using namespace mlir::attnedit;

namespace {

/// "matmul 36, rms_norm 11" (most frequent first).
std::string describe(const std::map<std::string, int64_t> &counts, int64_t &total) {
  std::vector<std::pair<std::string, int64_t>> items(counts.begin(), counts.end());
  std::stable_sort(items.begin(), items.end(),
                   [](const auto &a, const auto &b) { return a.second > b.second; });
  std::string text;
  total = 0;
  for (auto &[name, n] : items) {
    text += (text.empty() ? "" : ", ") + name + " " + std::to_string(n);
    total += n;
  }
  return text;
}

class AscendSimExecutor final : public Executor {
public:
  AscendSimExecutor(std::unique_ptr<ascend::OpSimulator> sim, bool refuse)
      : sim(std::move(sim)), refuse(refuse) {}

  llvm::Expected<std::vector<Tensor>> run(func::FuncOp func, llvm::ArrayRef<Tensor> args,
                                          ParameterStore &parameters) override;
  using Executor::run;
  llvm::StringRef backend() const override { return "ascend-sim"; }

private:
  struct Prepared {
    OperationFingerPrint fingerprint;
    OwningOpRef<ModuleOp> module;
    func::FuncOp func;
    /// Its attention chains, run as flash-attention mix kernels.
    std::unique_ptr<ascend::FusedAttention> attention;
    bool logged = false;
  };
  llvm::Expected<Prepared *> prepare(func::FuncOp func);

  std::unique_ptr<ascend::OpSimulator> sim;
  /// ATTNEDIT_ASCEND_FALLBACK=refuse: an op without a lowering is an error.
  bool refuse;
  std::mutex mutex;
  llvm::DenseMap<Operation *, std::unique_ptr<Prepared>> prepared;
};

llvm::Expected<AscendSimExecutor::Prepared *> AscendSimExecutor::prepare(func::FuncOp func) {
  OperationFingerPrint fingerprint(func);
  std::lock_guard<std::mutex> lock(mutex);
  auto it = prepared.find(func.getOperation());
  if (it != prepared.end() && it->second->fingerprint == fingerprint)
    return it->second.get();
  // A copy in a module of its own, with the original module's attributes
  // (parameter scopes), decomposed; the caller's IR is left as it is.
  OwningOpRef<ModuleOp> module = ModuleOp::create(func.getLoc());
  if (auto parent = func->getParentOfType<ModuleOp>())
    for (NamedAttribute a : parent->getAttrs())
      if (a.getName() != "sym_name")
        (*module)->setAttr(a.getName(), a.getValue());
  module->push_back(func.clone());
  if (llvm::Error e = runPipeline(*module, "attnedit-decompose"))
    return std::move(e);
  auto copy = module->lookupSymbol<func::FuncOp>(func.getSymName());
  auto entry = std::make_unique<Prepared>(Prepared{
      fingerprint, std::move(module), copy,
      std::make_unique<ascend::FusedAttention>(copy, sim->target())});
  Prepared *raw = entry.get();
  prepared[func.getOperation()] = std::move(entry);
  return raw;
}

llvm::Expected<std::vector<Tensor>> AscendSimExecutor::run(func::FuncOp func,
                                                           llvm::ArrayRef<Tensor> args,
                                                           ParameterStore &parameters) {
  auto ready = prepare(func);
  if (!ready)
    return ready.takeError();
  std::map<std::string, int64_t> simulated, fallback;
  double modelled = 0;
  ascend::FusedAttention::Run attention(*(*ready)->attention);
  // Slices OpSimulator left to their consumers' copies: where each lies in
  // its operand (kept alive here), by slice op.
  struct Folded {
    ascend::SliceView view;
    Tensor source;
    llvm::SmallVector<int64_t, 4> shape;
  };
  std::map<Operation *, Folded> folded;
  auto foldedSlice = [&](Value v) -> std::map<Operation *, Folded>::iterator {
    while (auto r = v.getDefiningOp<attnedit::ReshapeOp>())
      v = r.getInput();
    return folded.find(v.getDefiningOp());
  };
  // The slice kernel after all, for a folded slice a consumer read from a
  // copy (its kernels took one made on the host, or it ran on the host).
  auto materialize = [&](std::map<Operation *, Folded>::iterator it) -> llvm::Error {
    ascend::HostTensor x{it->second.shape, nullptr, nullptr, &it->second.view};
    llvm::Expected<ascend::SimulatedOp> m = sim->materialize(x);
    if (!m)
      return m.takeError();
    for (const std::string &k : m->kernels)
      ++simulated[k];
    modelled += m->modelledSeconds;
    folded.erase(it); // later consumers read the copy
    return llvm::Error::success();
  };
  EvaluatorOptions options;
  options.runOp = [&](Operation *op,
                      llvm::ArrayRef<const Tensor *> operands) -> std::optional<llvm::Expected<Tensor>> {
    // Names and views move no data on any backend.
    if (isa<attnedit::ParamOp, attnedit::ReshapeOp, arith::ConstantOp>(op))
      return std::nullopt;
    std::vector<ascend::HostTensor> host;
    for (auto [i, t] : llvm::enumerate(operands)) {
      host.push_back({llvm::SmallVector<int64_t, 4>(t->shape()),
                      t->isInt() ? nullptr : t->data(), t->isInt() ? t->intValues() : nullptr});
      auto it = foldedSlice(op->getOperand(i));
      if (it != folded.end() && !t->isInt())
        host.back().view = &it->second.view;
    }
    // Folded slices of this op's operands that its kernels do not read in
    // place (a pool written in place below is one).
    auto materializeUnread = [&](llvm::ArrayRef<unsigned> read) -> llvm::Error {
      for (unsigned i = 0; i < host.size(); ++i)
        if (host[i].view && !llvm::is_contained(read, i)) {
          auto it = foldedSlice(op->getOperand(i));
          if (it != folded.end())
            if (llvm::Error e = materialize(it))
              return e;
        }
      return llvm::Error::success();
    };
    std::optional<llvm::Expected<ascend::SimulatedOp>> r = attention.run(*sim, op, host);
    if (!r)
      r = sim->run(op, host);
    if (!r) {
      if (refuse) // the evaluator names the op and its location
        return std::optional<llvm::Expected<Tensor>>(llvm::createStringError(
            llvm::inconvertibleErrorCode(),
            "no Ascend lowering for these operands under --backend=ascend-sim "
            "(ATTNEDIT_ASCEND_FALLBACK=refuse)"));
      ++fallback[op->getName().stripDialect().str()];
      if (llvm::Error e = materializeUnread({}))
        return std::optional<llvm::Expected<Tensor>>(std::move(e));
      return std::nullopt;
    }
    if (!*r)
      return std::optional<llvm::Expected<Tensor>>((*r).takeError());
    if (llvm::Error e = materializeUnread((*r)->viewsRead))
      return std::optional<llvm::Expected<Tensor>>(std::move(e));
    for (const std::string &k : (*r)->kernels)
      ++simulated[k];
    modelled += (*r)->modelledSeconds;
    if ((*r)->folded)
      folded[op] = Folded{*(*r)->folded, *operands[0], (*r)->shape};
    if (isa<attnedit::CacheWriteOp>(op)) {
      // A slice of the pool read later must be taken before the write.
      for (auto it = folded.begin(); it != folded.end();) {
        auto next = std::next(it);
        if (it->second.source.data() == operands[0]->data())
          if (llvm::Error e = materialize(it))
            return std::optional<llvm::Expected<Tensor>>(std::move(e));
        it = next;
      }
      // The pool is donated: updated in place, as the callers keep using
      // their tensor (the reference kernel writes it the same way).
      const Tensor &pool = *operands[0];
      std::copy((*r)->values.begin(), (*r)->values.end(), const_cast<float *>(pool.data()));
      return std::optional<llvm::Expected<Tensor>>(pool);
    }
    Tensor out = Tensor::zeros((*r)->shape);
    std::copy((*r)->values.begin(), (*r)->values.end(), out.mutableData());
    return std::optional<llvm::Expected<Tensor>>(std::move(out));
  };
  auto results = evaluate((*ready)->func, args, parameters, options);
  if (!results)
    return results.takeError();
  int64_t nSim = 0, nRef = 0;
  std::string simText = describe(simulated, nSim), refText = describe(fallback, nRef);
  bool first;
  {
    std::lock_guard<std::mutex> lock(mutex);
    first = !(*ready)->logged;
    (*ready)->logged = true;
  }
  spdlog::log(first ? spdlog::level::info : spdlog::level::debug,
              "ascend-sim: @{} on {} ({} Cube operands): {} kernels simulated ({}), modelled "
              "{:.1f} us on the device; {} ops on the reference evaluator, no Ascend lowering "
              "({})",
              func.getSymName().str(), sim->target().label(),
              sim->options().dtype == ascend::DType::F32   ? "f32"
              : sim->options().dtype == ascend::DType::F16 ? "f16"
                                                           : "bf16",
              nSim, simText.empty() ? "none" : simText, modelled * 1e6, nRef,
              refText.empty() ? "none" : refText);
  return results;
}

} // namespace

llvm::Expected<std::unique_ptr<Executor>>
attnedit::createAscendSimExecutor(llvm::StringRef target, llvm::StringRef dtype) {
  ascend::OpSimulatorOptions options;
  options.target = target.str();
  if (dtype == "bf16")
    options.dtype = ascend::DType::BF16;
  else if (dtype == "f16")
    options.dtype = ascend::DType::F16;
  else if (dtype == "f32")
    options.dtype = ascend::DType::F32;
  else
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "--ascend-dtype: expected bf16, f16 or f32, got '%s'",
                                   dtype.str().c_str());
  // Read once, before any work: a misspelt value ("REFUSE", "error") must not
  // quietly run ops on the reference kernels a test meant to forbid.
  llvm::StringRef policy = llvm::StringRef(std::getenv("ATTNEDIT_ASCEND_FALLBACK"));
  if (!policy.empty() && policy != "refuse")
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "ATTNEDIT_ASCEND_FALLBACK: expected 'refuse' (or unset: ops without an Ascend lowering "
        "run on the reference kernels), got '%s'",
        policy.str().c_str());
  auto sim = ascend::OpSimulator::create(options);
  if (!sim)
    return sim.takeError();
  return std::make_unique<AscendSimExecutor>(std::move(*sim), policy == "refuse");
}
