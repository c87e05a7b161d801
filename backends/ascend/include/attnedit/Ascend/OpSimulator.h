//===- OpSimulator.h - one attnedit op through its Ascend kernels -*- C++ -*-===//
//
// What `attnedit-run --backend=ascend-sim` calls for every op of a function:
// the op's Ascend lowering for the operands' concrete shapes (the same
// kernel builders the passes use: tiled Cube matmul, Vector row kernels,
// fused flash attention), expanded to a schedule, cached by problem, and
// executed by the functional simulator on the actual values, hazard checks
// included. Ops without a lowering return std::nullopt so the caller runs
// them another way (the runtime's reference evaluator) and counts them.
//
// Kept free of runtime types (the runtime depends on backends, not the
// reverse): operands and results are plain row-major f32 / i32 buffers.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_ASCEND_OPSIMULATOR_H
#define ATTNEDIT_ASCEND_OPSIMULATOR_H

#include "attnedit/Ascend/AttentionKernel.h"
#include "attnedit/Ascend/Schedule.h"
#include "attnedit/Ascend/TargetDescription.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Operation.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace mlir::attnedit::ascend {

/// Where a slice left to its consumers lies (SimulatedOp::folded): columns
/// [offset, offset + width) of each `pitch`-element row of the row-major
/// `parent` (its operand, `parentElements` values).
struct SliceView {
  const float *parent = nullptr;
  int64_t parentElements = 0, pitch = 0, offset = 0, width = 0;
};

/// A row-major operand: f32 `data`, or i32 `ints` (token ids, positions).
/// With `view`, a folded slice's values: kernels read them in the parent.
struct HostTensor {
  llvm::SmallVector<int64_t, 4> shape;
  const float *data = nullptr;
  const int32_t *ints = nullptr;
  const SliceView *view = nullptr;
  int64_t numel() const;
};

struct SimulatedOp {
  llvm::SmallVector<int64_t, 4> shape;
  std::vector<float> values;
  /// The kernels that ran, e.g. {"matmul"} or {"flash_attention"}.
  llvm::SmallVector<std::string, 2> kernels;
  /// The cost model's time of those kernels on the target (launches
  /// included), as --attnedit-ascend-estimate reports it.
  double modelledSeconds = 0;
  /// A slice folded into its consumers: no kernel ran; its values (computed
  /// here too) lie there in its operand, where the consumers' kernels read
  /// them with a GM offset and a source stride.
  std::optional<SliceView> folded;
  /// The operands (indices) with a view that the kernels read in place;
  /// any other viewed operand still needs its slice kernel (materialize).
  llvm::SmallVector<unsigned, 2> viewsRead;
};

struct OpSimulatorOptions {
  /// A built-in target name or a JSON path (TargetDescription::load).
  std::string target = "910b";
  /// GM operands of the Cube kernels (the Cube reads 16-bit operands on the
  /// 910B, S3; f32 runs the Cube's 16x16x4 fp32 mode, S56). Vector kernels
  /// compute in f32 either way.
  DType dtype = DType::BF16;
  /// Leave slices to their consumers' copies (SimulatedOp::folded).
  bool foldSlices = true;
};

class OpSimulator {
public:
  static llvm::Expected<std::unique_ptr<OpSimulator>> create(OpSimulatorOptions options);
  ~OpSimulator();

  /// Runs `op` (an attnedit op whose operands have the values `operands`)
  /// through its Ascend kernels in the simulator. std::nullopt when the op,
  /// or this instance of it, has no Ascend lowering. Safe to call from
  /// several threads.
  std::optional<llvm::Expected<SimulatedOp>> run(Operation *op,
                                                 llvm::ArrayRef<HostTensor> operands);

  /// The flash-attention mix kernel on q [H, tq, dk], k [groups, tk, dk],
  /// v [groups, tk, dv] (ignored with p.valueFromKey) and sinks [H] (with
  /// p.sinks), its tiling searched with the cost model; the result is
  /// [tq, H, dv] ("flash_attention").
  /// With p.saveLse, `lse` receives each row's log-sum-exp [groups, rows].
  llvm::Expected<SimulatedOp> runAttention(const AttentionProblem &p, llvm::ArrayRef<float> q,
                                           llvm::ArrayRef<float> k, llvm::ArrayRef<float> v,
                                           llvm::ArrayRef<float> sinks,
                                           std::vector<float> *lse = nullptr);

  /// The flash-attention backward mix kernel (AttentionGradKernel.h) on the
  /// forward's q, k, v, sinks, its output o [tq, H, dv] and log-sum-exp,
  /// and the output's gradient dO [H, tq, dv]: dq [H, tq, dk], dk and dv per
  /// KV head [groups, tk, d], and with sinks d sink [H] (the kernel's
  /// per-row terms summed per head by a row-sum kernel).
  struct AttentionGrads {
    std::vector<float> dq, dk, dv, dsinks;
    llvm::SmallVector<std::string, 2> kernels;
    double modelledSeconds = 0;
  };
  llvm::Expected<AttentionGrads>
  runAttentionGrad(const AttentionProblem &p, llvm::ArrayRef<float> q, llvm::ArrayRef<float> k,
                   llvm::ArrayRef<float> v, llvm::ArrayRef<float> sinks, llvm::ArrayRef<float> o,
                   llvm::ArrayRef<float> lse, llvm::ArrayRef<float> dO);

  /// The slice kernel of a folded slice whose consumer could not read it in
  /// place (it ran on the host, or its kernels take a copy made on the host).
  llvm::Expected<SimulatedOp> materialize(const HostTensor &viewed);

  const TargetDescription &target() const { return *desc; }
  const OpSimulatorOptions &options() const { return opts; }

  /// Runs an already expanded schedule on GM tensors in argument order;
  /// returns the last GM tensor (every kernel's output comes last).
  static llvm::Expected<std::vector<float>>
  simulate(const Schedule &schedule, llvm::ArrayRef<llvm::ArrayRef<float>> inputs);
  /// The same, returning the last `count` GM tensors in argument order.
  static llvm::Expected<std::vector<std::vector<float>>>
  simulate(const Schedule &schedule, llvm::ArrayRef<llvm::ArrayRef<float>> inputs, size_t count);

  /// The schedule of a problem described by `key`, built once by `build`
  /// (which creates one ascend.kernel at the builder's insertion point) and
  /// timed once by the cost model (`seconds`).
  llvm::Expected<std::shared_ptr<const Schedule>>
  schedule(const std::string &key,
           llvm::function_ref<llvm::Expected<Operation *>(OpBuilder &)> build,
           double *seconds = nullptr);

private:
  OpSimulator(OpSimulatorOptions options, std::shared_ptr<const TargetDescription> target);

  /// The kernel `build` creates (once per `key`), run on `inputs` (GM
  /// arguments in order); its last GM tensor is the result, of `shape`.
  llvm::Expected<SimulatedOp>
  launch(const std::string &key, llvm::StringRef name,
         llvm::function_ref<llvm::Expected<Operation *>(OpBuilder &)> build,
         llvm::ArrayRef<llvm::ArrayRef<float>> inputs, llvm::SmallVector<int64_t, 4> shape);

  /// `base` with GM arguments bound to views (argument, view), cached under
  /// `key` and timed again (`seconds`): bursts per row of the parent.
  llvm::Expected<std::shared_ptr<const Schedule>>
  viewed(const std::string &key, const Schedule &base,
         llvm::ArrayRef<std::pair<size_t, SliceView>> views, double *seconds);

  OpSimulatorOptions opts;
  std::shared_ptr<const TargetDescription> desc;
  std::unique_ptr<MLIRContext> context;
  std::mutex mutex;
  /// Kernels stay in this module: a schedule's instructions point at them.
  OwningOpRef<Operation *> kernels;
  std::map<std::string, std::pair<std::shared_ptr<const Schedule>, double>> cache;
};

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_OPSIMULATOR_H
