//===- AttentionSteps.h - what the flash-attention builders share -*- C++ -*-===//
//
// The forward (AttentionKernel.cpp) and backward (AttentionGradKernel.cpp)
// flash-attention builders both start a mix kernel with a tiling record,
// walk query tiles whose rows wrap over a GQA group's heads, and mask the
// KV tiles that cross the causal diagonal or the window's edge. This is
// that code, once.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_ASCEND_TRANSFORMS_ATTENTIONSTEPS_H
#define ATTNEDIT_ASCEND_TRANSFORMS_ATTENTIONSTEPS_H

#include "KernelEmitter.h"

#include "attnedit/Ascend/AttentionKernel.h"

namespace mlir::attnedit::ascend {

/// Why `bytes` per space do not fit the target's buffers (UB less what its
/// library temporaries keep), or an empty string.
inline std::string capacityError(const TargetDescription &t,
                                 const std::array<int64_t, kNumSpaces> &bytes) {
  for (int s = 1; s < kNumSpaces; ++s) {
    int64_t cap = t.usableBytes(static_cast<Space>(s));
    if (bytes[s] > cap)
      return (stringifySpace(static_cast<Space>(s)) + " needs " + llvm::Twine(bytes[s]) +
              " bytes of " + llvm::Twine(cap))
          .str();
  }
  return {};
}

/// A mix kernel (per block one AIC and its AIVs) of `blockDim` blocks with a
/// TCubeTiling-style record; its entry block takes the block index and the
/// core within the block, then the GM arguments the caller appends.
struct MixKernel {
  KernelOp kernel;
  Block *entry;
  Value block, core;
  Location loc;

  /// A GM tensor argument of `shape`, appended.
  Value gm(llvm::ArrayRef<int64_t> shape, Type e) {
    return entry->addArgument(BufType::get(e.getContext(), Space::GM, shape, e, Layout::ND), loc);
  }
  /// The index the next argument will have (the first of the workspace).
  int64_t nextArgument() const { return entry->getNumArguments() - 2; }
};
inline MixKernel startMixKernel(OpBuilder &b, Location loc, llvm::StringRef name,
                                const TargetDescription &t, int64_t blockDim,
                                llvm::ArrayRef<std::pair<llvm::StringRef, int64_t>> tiling) {
  SmallVector<NamedAttribute> fields;
  for (auto [key, value] : tiling)
    fields.push_back(b.getNamedAttr(key, b.getI64IntegerAttr(value)));
  auto kernel = b.create<KernelOp>(loc, name, t.reference(), blockDim, CoreKind::Mix,
                                   b.getDictionaryAttr(fields), DenseI64ArrayAttr());
  Block *entry = new Block();
  kernel.getBody().push_back(entry);
  Value block = entry->addArgument(b.getIndexType(), loc);
  Value core = entry->addArgument(b.getIndexType(), loc);
  return {kernel, entry, block, core, loc};
}

/// Query rows [row0, row0 + bq) of a group (its rows wrap over the group's
/// heads every tq rows): the first and last position they hold, and the KV
/// tiles of bk keys they see, jLo..jHi (research §9.6: a window visits only
/// the tiles it overlaps).
struct QueryRows {
  Value pMin, pMax, jLo, jHi;
};
inline QueryRows queryRows(KernelEmitter &e, const AttentionProblem &p, Value row0, int64_t bq,
                           int64_t bk) {
  using P = arith::CmpIPredicate;
  Value c0 = e.cst(0);
  Value last = e.sub(e.smin(e.add(row0, e.cst(bq)), e.cst(p.rows())), e.cst(1));
  Value same = e.cmp(P::eq, e.div(row0, p.tq), e.div(last, p.tq));
  Value tMin = e.select(same, e.rem(row0, p.tq), c0);
  Value tMax = e.select(same, e.rem(last, p.tq), e.cst(p.tq - 1));
  QueryRows q;
  q.pMin = e.add(tMin, e.cst(p.tk - p.tq));
  q.pMax = e.add(tMax, e.cst(p.tk - p.tq));
  Value lo = p.window ? e.smax(c0, e.sub(q.pMin, e.cst(p.window - 1))) : c0;
  q.jLo = e.div(lo, bk);
  q.jHi = e.div(q.pMax, bk);
  return q;
}

/// Whether the KV tile of keys j0.. crosses the causal diagonal (keys past
/// the rows' earliest position) or the window's left edge. There, the
/// compressed mask's row for each of the `r` query rows from `row0` (row a =
/// q - j0 + bk - 1 at table index a + kMaskPadRows, clamped to the table:
/// attentionMaskRows) is copied into `mask` on MTE2, as CANN's sparse modes
/// 3 / 4 take it (S29). When the r rows are consecutive positions of one
/// head (r divides tq and row0 is a multiple of r) and their table rows lie
/// in the table, that is one copy of r table rows; otherwise row by row.
inline Value loadEdgeMask(KernelEmitter &e, const AttentionProblem &p, int64_t bk, Value maskGm,
                          Value mask, Value row0, int64_t r, Value j0, const QueryRows &q) {
  using P = arith::CmpIPredicate;
  const int64_t tableRows = attentionMaskTableRows(p, bk);
  Value edge = e.cmp(P::sgt, e.add(j0, e.cst(bk - 1)), q.pMin);
  if (p.window)
    edge = e.orI(edge, e.cmp(P::slt, j0, e.sub(q.pMax, e.cst(p.window - 1))));
  e.when(edge, [&] {
    Value c0 = e.cst(0);
    // Table index of the row of query position pos.
    auto index = [&](Value pos) { return e.add(e.sub(pos, j0), e.cst(bk - 1 + kMaskPadRows)); };
    auto rowByRow = [&] {
      for (int64_t row = 0; row < r; ++row) {
        Value pos = e.add(e.rem(e.add(row0, e.cst(row)), p.tq), e.cst(p.tk - p.tq));
        Value a = e.smin(e.smax(index(pos), c0), e.cst(tableRows - 1));
        e.copy(Pipe::MTE2, maskGm, {a, c0}, mask, {e.cst(row), c0}, 1, bk);
      }
    };
    if (p.tq % r != 0 || r > kMaskPadRows) {
      rowByRow();
      return;
    }
    Value a0 = index(e.add(e.rem(row0, p.tq), e.cst(p.tk - p.tq)));
    Value inTable = e.andI(e.cmp(P::sge, a0, c0), e.cmp(P::sle, a0, e.cst(tableRows - r)));
    e.when(inTable, [&] { e.copy(Pipe::MTE2, maskGm, {a0, c0}, mask, {c0, c0}, r, bk); });
    e.when(e.cmp(P::eq, inTable, e.constBool(false)), rowByRow);
  });
  return edge;
}

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_TRANSFORMS_ATTENTIONSTEPS_H
