//===- GradientProgram.h - run a training step's gradient -----*- C++ -*-===//
//
// Owns the trainable parameters of an --attnedit-autodiff function as
// mutable f32 buffers that the parameter store serves to the evaluator, and
// computes the mean gradient of a batch of sequences, on as many threads as
// there are cores, and across the ranks of a ProcessGroup when there is one.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_TRAINING_GRADIENTPROGRAM_H
#define ATTNEDIT_RUNTIME_TRAINING_GRADIENTPROGRAM_H

#include "attnedit/Runtime/Execution/Executor.h"
#include "attnedit/Runtime/Execution/ParameterStore.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <map>
#include <optional>

namespace mlir::attnedit {

class ProcessGroup;

class GradientProgram {
public:
  /// Binds `gradFunc` (with its `attnedit.gradients` attribute) to `store`.
  /// Each trainable parameter starts from the store; a student-scoped one
  /// missing there starts as a copy of the unscoped (teacher) parameter of
  /// the same name; one missing everywhere (training from scratch) starts
  /// random from `seed`: N(0, 0.02²), norm weights 1.
  static llvm::Expected<GradientProgram> create(func::FuncOp gradFunc, ParameterStore &store,
                                                uint64_t seed);

  /// Runs every sequence of `batch` (the arguments of one call each), sets
  /// gradient(i) to the mean of their gradients and returns their mean loss.
  /// Sequence k belongs to lane k % lanes() and the lanes are summed in
  /// order, so the result is the same bit for bit whatever number of threads
  /// ran the lanes (`threads`; 0 = one per core).
  ///
  /// On an executor that prefers it (Executor::prefersPackedSequences), a
  /// lane's sequences run as one call, packed one after another (a
  /// causal_mask with `segments`), so its GEMMs take all their rows at once,
  /// when they can: every argument a vector of one length (tokens,
  /// positions, targets) and as many supervised targets (not -1) in each,
  /// so that the packed mean loss is the mean of theirs. Otherwise the lane
  /// runs them one by one and sums.
  ///
  /// Across a process group, rank r runs the lanes l with l % size == r (only
  /// the sequences it owns need arguments; the others may be empty), and the
  /// lanes are summed in the same order by ProcessGroup::sumLanes: every
  /// rank ends with the gradient and loss one process computes, bit for bit.
  llvm::Expected<double> computeBatch(llvm::ArrayRef<std::vector<Tensor>> batch,
                                      unsigned threads = 0);
  static constexpr unsigned kLanes = 4; // the default of Recipe::lanes
  /// Sums a batch in `lanes` lanes (at least 1): the most ranks a job can
  /// use. Another count adds in another order, so changes the last bits.
  void setLanes(size_t lanes) { maxLanes = std::max<size_t>(lanes, 1); }
  /// The lanes a batch of `batchSize` sequences runs in.
  size_t lanesFor(size_t batchSize) const { return std::min(maxLanes, batchSize); }

  /// Runs this rank's share of every batch of `group` (null: all of it).
  void distribute(ProcessGroup *group) { this->group = group; }
  /// True if sequence `k` of a batch of `batchSize` is this rank's to run.
  bool ownsSequence(size_t k, size_t batchSize) const;
  /// Seconds the last computeBatch spent computing this rank's lanes, and in
  /// collectives (including waiting for slower ranks).
  double computeSeconds() const { return lastCompute; }
  double communicationSeconds() const { return lastCommunication; }
  /// How many of the last computeBatch's lanes ran packed in one call.
  size_t packedLanes() const { return lastPackedLanes; }

  size_t size() const { return names.size(); }
  llvm::StringRef name(size_t i) const { return names[i]; }
  /// True if parameter i is a teacher weight's student copy that train=all
  /// trains (attrs::kTeacherCopy), not an edited attention's own.
  bool isTeacherCopy(size_t i) const { return teacherCopies[i]; }
  Tensor &parameter(size_t i) { return params[i]; }
  llvm::ArrayRef<Tensor> parameters() const { return params; }
  Tensor &gradient(size_t i) { return grads[i]; }

private:
  GradientProgram(func::FuncOp gradFunc, ParameterStore &store)
      : gradFunc(gradFunc), store(&store) {}

  func::FuncOp gradFunc;
  ParameterStore *store;
  std::vector<std::string> names; // "scope::name" or "name"
  std::vector<bool> teacherCopies;
  std::vector<Tensor> params, grads;
  // Per lane of several sequences, its gradient sum (made on first use); a
  // lane of one call is that call's gradients as the executor returned
  // them, never copied.
  std::vector<std::vector<Tensor>> laneBuffers;
  // Per count of packed sequences, a copy of gradFunc's module in which
  // that function's causal masks have as many segments (made on first use).
  std::map<size_t, OwningOpRef<ModuleOp>> packedModules;
  ProcessGroup *group = nullptr;
  size_t maxLanes = kLanes;
  std::vector<float> flat; // this rank's lanes, then the sum, as one vector
  double lastCompute = 0, lastCommunication = 0;
  size_t lastPackedLanes = 0;

  bool ownsLane(size_t lane) const;
  func::FuncOp packedFunction(size_t count);
  std::optional<std::vector<Tensor>> packed(llvm::ArrayRef<std::vector<Tensor>> batch,
                                            size_t lane, size_t numLanes) const;
  llvm::Error sumAcrossRanks(llvm::ArrayRef<std::vector<Tensor>> laneSums,
                             llvm::ArrayRef<float> laneWeights);
};

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_TRAINING_GRADIENTPROGRAM_H
