//===- AscendTestSupport.h - shared helpers of the Ascend unit tests -*- C++ -*-===//
#ifndef ATTNEDIT_TESTS_UNIT_ASCEND_ASCENDTESTSUPPORT_H
#define ATTNEDIT_TESTS_UNIT_ASCEND_ASCENDTESTSUPPORT_H

#include "attnedit/Ascend/AscendOps.h"
#include "attnedit/Ascend/ScheduleBuilder.h"
#include "attnedit/Ascend/Simulator.h"
#include "attnedit/Ascend/VectorKernel.h"
#include "attnedit/Runtime/Execution/Tensor.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace mlir::attnedit::ascend::test {

/// A tensor of `shape` with values uniform in [lo, hi).
inline Tensor randomTensor(std::vector<int64_t> shape, std::mt19937 &rng, float lo = -1,
                           float hi = 1) {
  Tensor t = Tensor::zeros(shape);
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t k = 0; k < t.numel(); ++k)
    t.mutableData()[k] = d(rng);
  return t;
}

/// A kernel in a module of its own, the target it was built for and its
/// expanded schedule (null when it did not build; the test has failed then).
struct BuiltKernel {
  MLIRContext context;
  OwningOpRef<ModuleOp> module;
  std::shared_ptr<const TargetDescription> target;
  std::unique_ptr<Schedule> schedule;
};

/// Builds one kernel with `build` for `target`, checks that it verifies and
/// expands.
inline std::unique_ptr<BuiltKernel>
buildKernel(llvm::StringRef target,
            llvm::function_ref<KernelOp(OpBuilder &, const TargetDescription &)> build) {
  auto out = std::make_unique<BuiltKernel>();
  out->context.loadDialect<AscendDialect>();
  OpBuilder b(&out->context);
  out->module = ModuleOp::create(b.getUnknownLoc());
  b.setInsertionPointToEnd(out->module->getBody());
  auto t = TargetDescription::load(target);
  EXPECT_TRUE(static_cast<bool>(t)) << (t ? "" : llvm::toString(t.takeError()));
  if (!t)
    return out;
  out->target = *t;
  KernelOp kernel = build(b, **t);
  EXPECT_TRUE(succeeded(kernel.verify()));
  auto s = buildSchedule(kernel);
  EXPECT_TRUE(static_cast<bool>(s)) << (s ? "" : llvm::toString(s.takeError()));
  if (s)
    out->schedule = std::make_unique<Schedule>(std::move(*s));
  return out;
}

/// Runs `s` in the simulator on `in` (the first GM tensors) and returns its
/// last GM tensor (the kernels' output), or the simulator's error.
inline llvm::Expected<std::vector<float>> runSchedule(const Schedule &s,
                                                      const std::vector<std::vector<float>> &in) {
  Simulator sim(s);
  for (size_t k = 0; k < in.size(); ++k)
    sim.setTensor(k, in[k]);
  if (llvm::Error e = sim.run())
    return std::move(e);
  return sim.tensor(s.gm.size() - 1);
}

/// Builds one kernel with `build` for `target` (buildKernel), runs it in the
/// simulator on `inputs` (the first GM tensors) and returns the GM tensor
/// after them (the kernels' output).
inline std::vector<float>
simulateKernel(llvm::StringRef target,
               llvm::function_ref<KernelOp(OpBuilder &, const TargetDescription &)> build,
               std::vector<const Tensor *> inputs, int64_t *instructions = nullptr) {
  std::unique_ptr<BuiltKernel> built = buildKernel(target, build);
  if (!built->schedule)
    return {};
  const Schedule *s = built->schedule.get();
  Simulator sim(*s);
  for (size_t k = 0; k < inputs.size(); ++k)
    sim.setTensor(k, llvm::ArrayRef<float>(inputs[k]->data(), inputs[k]->numel()));
  llvm::Error e = sim.run();
  EXPECT_FALSE(static_cast<bool>(e)) << (e ? llvm::toString(std::move(e)) : "");
  if (instructions)
    *instructions = sim.executedInstructions();
  return sim.tensor(inputs.size());
}

/// The kernel `build` makes for `p` with the tile rows `rowsPerTile` picks
/// (expected to be at least 1), simulated on `inputs` (simulateKernel): the
/// row, move, mask and column kernels all take their problem that way.
template <typename Problem>
std::vector<float>
simulateTiled(const Problem &p, llvm::StringRef target,
              int64_t (*rowsPerTile)(const Problem &, const TargetDescription &),
              KernelOp (*build)(OpBuilder &, Location, llvm::StringRef, const Problem &, int64_t,
                                const TargetDescription &),
              std::vector<const Tensor *> inputs, int64_t *instructions = nullptr) {
  return simulateKernel(
      target,
      [&](OpBuilder &b, const TargetDescription &t) {
        int64_t r = rowsPerTile(p, t);
        EXPECT_GE(r, 1);
        return build(b, b.getUnknownLoc(), "k", p, r, t);
      },
      inputs, instructions);
}

/// The row kernel of `p` (its largest tile that fits) simulated on `inputs`.
inline std::vector<float> simulateRows(const RowProblem &p, llvm::StringRef target,
                                       std::vector<const Tensor *> inputs,
                                       int64_t *instructions = nullptr) {
  return simulateTiled(p, target, rowsPerTile, buildRowKernel, inputs, instructions);
}

} // namespace mlir::attnedit::ascend::test

#endif // ATTNEDIT_TESTS_UNIT_ASCEND_ASCENDTESTSUPPORT_H
