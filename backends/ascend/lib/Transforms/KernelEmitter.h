//===- KernelEmitter.h - the statements every kernel builder writes -*- C++ -*-===//
//
// The row, move, transpose and flash-attention builders write their kernels
// from the same few statements: index arithmetic, buffers planned one after
// another per space, flags between pipes and cores, barriers, copies, Cube
// and Vector instructions, `if` and `for`. This is the one place that
// spells them.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_ASCEND_TRANSFORMS_KERNELEMITTER_H
#define ATTNEDIT_ASCEND_TRANSFORMS_KERNELEMITTER_H

#include "attnedit/Ascend/AscendOps.h"
#include "attnedit/Ascend/TargetDescription.h"
#include "attnedit/Ascend/TileLayout.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include <array>

namespace mlir::attnedit::ascend {

/// The MLIR element type of `d`, as the Cube operands and GM tensors take it.
inline Type cubeElementType(MLIRContext *ctx, DType d) {
  Builder b(ctx);
  return d == DType::F32 ? b.getF32Type() : d == DType::F16 ? b.getF16Type() : b.getBF16Type();
}

struct KernelEmitter {
  OpBuilder &b;
  Location loc;
  const TargetDescription &t;
  /// The next free byte of each space.
  std::array<int64_t, kNumSpaces> offset{};

  KernelEmitter(OpBuilder &b, Location loc, const TargetDescription &t) : b(b), loc(loc), t(t) {}

  //===--- index arithmetic ----------------------------------------------===//
  Value cst(int64_t v) { return b.create<arith::ConstantIndexOp>(loc, v); }
  Value constBool(bool v) { return b.create<arith::ConstantIntOp>(loc, v, 1); }
  Value add(Value x, Value y) { return b.create<arith::AddIOp>(loc, x, y); }
  Value sub(Value x, Value y) { return b.create<arith::SubIOp>(loc, x, y); }
  Value mul(Value x, Value y) { return b.create<arith::MulIOp>(loc, x, y); }
  Value div(Value x, Value y) { return b.create<arith::DivUIOp>(loc, x, y); }
  Value rem(Value x, Value y) { return b.create<arith::RemUIOp>(loc, x, y); }
  Value mul(Value x, int64_t y) { return mul(x, cst(y)); }
  Value div(Value x, int64_t y) { return div(x, cst(y)); }
  Value rem(Value x, int64_t y) { return rem(x, cst(y)); }
  Value smax(Value x, Value y) { return b.create<arith::MaxSIOp>(loc, x, y); }
  Value smin(Value x, Value y) { return b.create<arith::MinSIOp>(loc, x, y); }
  Value cmp(arith::CmpIPredicate pred, Value x, Value y) {
    return b.create<arith::CmpIOp>(loc, pred, x, y);
  }
  Value andI(Value x, Value y) { return b.create<arith::AndIOp>(loc, x, y); }
  Value orI(Value x, Value y) { return b.create<arith::OrIOp>(loc, x, y); }
  Value select(Value c, Value x, Value y) { return b.create<arith::SelectOp>(loc, c, x, y); }

  //===--- buffers --------------------------------------------------------===//
  /// `slots` tiles of `rows` x `cols` in `space`, after the last one there.
  Value alloc(Space space, Layout layout, int64_t rows, int64_t cols, Type e, int64_t slots = 1) {
    auto type = BufType::get(b.getContext(), space, {rows, cols}, e, layout);
    Value v = b.create<AllocOp>(loc, type, offset[(int)space], slots);
    offset[(int)space] += roundUp(type.getBytes() * slots, t.buffer(space).align);
    return v;
  }
  /// An f32 UB tile (the vector-core builders' only kind).
  Value alloc(int64_t rows, int64_t cols, int64_t slots = 1) {
    return alloc(Space::UB, Layout::ND, rows, cols, b.getF32Type(), slots);
  }
  Value slot(Value buffer, Value index) {
    return b.create<SlotOp>(loc, buffer.getType(), buffer, index);
  }

  //===--- synchronisation -----------------------------------------------===//
  void set(Pipe src, Pipe dst, Value event) { b.create<SetFlagOp>(loc, src, dst, event); }
  void wait(Pipe src, Pipe dst, Value event) { b.create<WaitFlagOp>(loc, src, dst, event); }
  void set(Pipe src, Pipe dst, int64_t event) { set(src, dst, cst(event)); }
  void wait(Pipe src, Pipe dst, int64_t event) { wait(src, dst, cst(event)); }
  /// set_flag (isSet) or wait_flag src -> dst: the pre-arming and draining
  /// loops write both from one list.
  void flag(bool isSet, Pipe src, Pipe dst, Value event) {
    if (isSet)
      set(src, dst, event);
    else
      wait(src, dst, event);
  }
  void flag(bool isSet, Pipe src, Pipe dst, int64_t event) { flag(isSet, src, dst, cst(event)); }
  /// A flag between two pipes of one core.
  struct Flag {
    Pipe src, dst;
    int64_t event;
  };
  /// Each flag's set_flag (isSet) or wait_flag: a kernel pre-arms its
  /// consumer-to-producer flags before its loop and drains them after it, so
  /// every buffer starts free and none is pending at the end (S31).
  void flags(bool isSet, llvm::ArrayRef<Flag> list) {
    for (const Flag &f : list)
      flag(isSet, f.src, f.dst, f.event);
  }
  void barrier(Pipe pipe = Pipe::V) { b.create<BarrierOp>(loc, pipe); }
  /// CrossCoreSetFlag / CrossCoreWaitFlag between a mix block's cores (S23).
  void crossSet(Pipe pipe, int64_t flag) { b.create<CrossSetOp>(loc, pipe, cst(flag)); }
  void crossWait(int64_t flag) { b.create<CrossWaitOp>(loc, cst(flag)); }
  void syncAll() { b.create<SyncAllOp>(loc); }

  //===--- data movement and the Cube ------------------------------------===//
  /// `rows` x `cols` of `dst` from `src` (its transpose with `transpose`);
  /// offsets are each side's own.
  void copy(Pipe pipe, Value src, ValueRange srcOffsets, Value dst, ValueRange dstOffsets,
            int64_t rows, int64_t cols, bool transpose = false) {
    b.create<CopyOp>(loc, pipe, src, srcOffsets, dst, dstOffsets, ArrayRef<int64_t>{rows, cols},
                     transpose);
  }
  /// c (+)= a·b, then a barrier: the next mmad may accumulate into c (S55).
  void mmad(Value a, Value bb, Value c, Value init) {
    b.create<MmadOp>(loc, a, bb, c, init);
    barrier(Pipe::M);
  }

  //===--- the Vector unit: each instruction, then a barrier (S55) -------===//
  template <typename Op> void v1(Value src, Value dst) {
    b.create<Op>(loc, src, dst);
    barrier();
  }
  template <typename Op> void v2(Value lhs, Value rhs, Value dst) {
    b.create<Op>(loc, lhs, rhs, dst);
    barrier();
  }
  /// An op with a scalar operand (vmuls, vadds).
  template <typename Op> void scalar(Value src, double c, Value dst) {
    b.create<Op>(loc, src, b.getF64FloatAttr(c), dst);
    barrier();
  }
  void dup(double c, Value dst) {
    b.create<VDupOp>(loc, b.getF64FloatAttr(c), dst);
    barrier();
  }
  void reduce(ReduceKind kind, Value src, Value dst) {
    b.create<VReduceOp>(loc, kind, src, dst);
    barrier();
  }

  //===--- structure ------------------------------------------------------===//
  /// scf.if without results; `then` builds its body.
  void when(Value cond, llvm::function_ref<void()> then) {
    auto op = b.create<scf::IfOp>(loc, cond, /*withElseRegion=*/false);
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(&op.getThenRegion().front());
    then();
  }
  /// scf.for from lo to hi by step; `body` gets the induction variable.
  void loop(Value lo, Value hi, int64_t step, llvm::function_ref<void(Value)> body) {
    auto op = b.create<scf::ForOp>(loc, lo, hi, cst(step));
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(op.getBody());
    body(op.getInductionVar());
  }
};

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_TRANSFORMS_KERNELEMITTER_H
