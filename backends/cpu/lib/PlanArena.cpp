//===- PlanArena.cpp - intermediate buffers as views of one arena ----------===//

#include "attnedit/CPU/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

namespace mlir::attnedit::cpu {
#define GEN_PASS_DEF_PLANARENAPASS
#include "attnedit/CPU/Passes.h.inc"
} // namespace mlir::attnedit::cpu

using namespace mlir;

namespace {

constexpr int64_t kAlignment = 64;

struct Buffer {
  memref::AllocOp alloc;
  int64_t bytes, first, last, offset = -1;
};

/// Bytes of a static, identity-layout buffer of whole-byte elements, or
/// nullopt for one the arena does not take.
std::optional<int64_t> byteSize(MemRefType type) {
  unsigned bits = type.getElementType().getIntOrFloatBitWidth();
  if (!type.hasStaticShape() || !type.getLayout().isIdentity() || bits % 8 ||
      type.getMemorySpace())
    return std::nullopt;
  return type.getNumElements() * (bits / 8);
}

/// The live range of `alloc`'s buffer in `entry` (op indices), or nullopt
/// when the buffer escapes through the return. Every op producing a memref
/// from the buffer is taken to alias it.
std::optional<std::pair<int64_t, int64_t>>
liveRange(memref::AllocOp alloc, Block &entry, const DenseMap<Operation *, int64_t> &index) {
  int64_t first = index.lookup(alloc), last = first;
  SmallVector<Value> work{alloc.getResult()};
  DenseSet<Value> seen{alloc.getResult()};
  while (!work.empty()) {
    Value v = work.pop_back_val();
    for (Operation *user : v.getUsers()) {
      if (isa<func::ReturnOp>(user))
        return std::nullopt;
      Operation *top = entry.findAncestorOpInBlock(*user);
      if (!top)
        return std::nullopt;
      last = std::max(last, index.lookup(top));
      for (Value r : user->getResults())
        if (isa<BaseMemRefType>(r.getType()) && seen.insert(r).second)
          work.push_back(r);
    }
  }
  return std::pair{first, last};
}

/// Greedy by size: the largest buffers first, each at the lowest aligned
/// offset that no placed buffer live at the same time overlaps.
int64_t place(MutableArrayRef<Buffer> buffers) {
  SmallVector<Buffer *> order;
  for (Buffer &b : buffers)
    order.push_back(&b);
  llvm::stable_sort(order, [](Buffer *a, Buffer *b) { return a->bytes > b->bytes; });
  int64_t total = 0;
  SmallVector<Buffer *> placed;
  for (Buffer *b : order) {
    SmallVector<std::pair<int64_t, int64_t>> taken;
    for (Buffer *p : placed)
      if (p->first <= b->last && b->first <= p->last)
        taken.push_back({p->offset, p->offset + p->bytes});
    llvm::sort(taken);
    int64_t offset = 0;
    for (auto [begin, end] : taken) {
      if (offset + b->bytes <= begin)
        break;
      offset = std::max<int64_t>(offset, llvm::alignTo(end, kAlignment));
    }
    b->offset = offset;
    total = std::max(total, offset + b->bytes);
    placed.push_back(b);
  }
  return (int64_t)llvm::alignTo(total, kAlignment);
}

struct PlanArenaPass : attnedit::cpu::impl::PlanArenaPassBase<PlanArenaPass> {
  void runOnOperation() override {
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (!func.isExternal())
        plan(func);
  }

  void plan(func::FuncOp func) {
    Block &entry = func.getBody().front();
    DenseMap<Operation *, int64_t> index;
    for (auto [i, op] : llvm::enumerate(entry))
      index[&op] = i;
    SmallVector<Buffer> buffers;
    for (auto alloc : entry.getOps<memref::AllocOp>()) {
      std::optional<int64_t> bytes = byteSize(alloc.getType());
      if (!bytes || *bytes == 0)
        continue;
      if (auto range = liveRange(alloc, entry, index))
        buffers.push_back({alloc, *bytes, range->first, range->second});
    }
    int64_t total = place(buffers);
    OpBuilder b(func.getContext());
    auto arenaType = MemRefType::get({std::max<int64_t>(total, kAlignment)}, b.getI8Type());
    func.insertArgument(func.getNumArguments(), arenaType,
                        b.getDictionaryAttr(b.getNamedAttr("attnedit.arena", b.getUnitAttr())),
                        func.getLoc());
    func->setAttr("attnedit.arena_bytes", b.getI64IntegerAttr(total));
    Value arena = func.getArguments().back();
    for (Buffer &buffer : buffers) {
      b.setInsertionPoint(buffer.alloc);
      Location loc = buffer.alloc.getLoc();
      Value offset = b.create<arith::ConstantIndexOp>(loc, buffer.offset);
      Value view = b.create<memref::ViewOp>(loc, buffer.alloc.getType(), arena, offset,
                                            ValueRange());
      buffer.alloc.replaceAllUsesWith(view);
      buffer.alloc.erase();
    }
  }
};

} // namespace
