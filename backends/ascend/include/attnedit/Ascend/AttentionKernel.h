//===- AttentionKernel.h - flash attention as a mix kernel ----*- C++ -*-===//
//
// softmax(scale·q·kᵀ + causal / sliding-window mask [, sinks])·v in one MIX
// kernel, as catlass's FlashAttentionInfer does it on the 910B (S30,
// research §3.3, §9.3): per block the cube core (AIC) computes S = Q·Kᵀ
// tiles and writes them through FixPipe into a small GM ring, its two
// vector cores (AIV) each take half of the rows, run the online softmax and
// write P back, the cube computes O_tmp = P·V into the ring, and the vector
// cores rescale and accumulate O. Flags go both ways (cross_set /
// cross_wait); the cube runs `ring - 1` QKᵀ stages ahead of PV.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_ASCEND_ATTENTIONKERNEL_H
#define ATTNEDIT_ASCEND_ATTENTIONKERNEL_H

#include "attnedit/Ascend/AscendOps.h"
#include "attnedit/Ascend/CostModel.h"
#include "attnedit/Ascend/TargetDescription.h"

#include "mlir/IR/Builders.h"

#include <vector>

namespace mlir::attnedit::ascend {

/// The queries of one KV head are processed together (GQA shares each K/V
/// tile among them, S27): group g holds rows ρ = i·tq + t for its
/// `headsPerGroup` query heads i and tokens t, i.e. q [H, tq, dk] read as
/// [groups, headsPerGroup·tq, dk]. Queries are the last tq of tk positions:
/// token t sits at tk - tq + t and sees keys j <= that position, and with
/// `window` W > 0 only the last W of them (CANN sparse mode 4, S29).
struct AttentionProblem {
  int64_t groups = 0, headsPerGroup = 1;
  int64_t tq = 0, tk = 0, dk = 0, dv = 0;
  double scale = 1;
  int64_t window = 0;
  /// Per-head sink logits in the denominator (gpt-oss): folded into the
  /// initial running max and sum (research §9.6).
  bool sinks = false;
  /// V is the first dv columns of K: MLA's absorbed decode over the latent
  /// cache, the latent tile kept in L1 and read again as V (S31).
  bool valueFromKey = false;
  DType dtype = DType::BF16; // Q, K, V and P as the Cube reads them
  /// Also write each row's log-sum-exp m + ln l (sinks included) for the
  /// backward kernel (AttentionGradKernel.h), which recomputes P from it.
  bool saveLse = false;

  int64_t rows() const { return headsPerGroup * tq; }
  int64_t heads() const { return groups * headsPerGroup; }
};

/// bq query rows per task (each AIV takes bq / 2), bk keys per KV tile, a
/// GM ring of `ring` slots per block (QKᵀ runs ring - 1 tiles ahead of PV),
/// and the Cube's K chunk of QKᵀ and N chunk of PV.
///
/// `splits` > 1 (decode, tq = 1: every task sees the same keys) divides
/// each task's KV tiles into that many contiguous parts, each a task of its
/// own (CANN's SplitKV / flash decoding, S27): few long tasks then fill the
/// cores. Each part writes its normalised O and log-sum-exp to workspace;
/// after a sync_all the vector cores combine the parts per row.
struct AttentionTiling {
  int64_t bq = 0, bk = 0, ring = 2, kChunk = 0, nChunk = 0, splits = 1;
};

/// KV tiles of every task of a decode problem (tq = 1), 0 otherwise.
int64_t decodeKvTiles(const AttentionProblem &p, int64_t bk);

/// Whether `tiling` fits the target's L1, L0A/B/C and UB; otherwise says
/// which buffer overflows.
bool attentionFits(const AttentionProblem &p, const AttentionTiling &tiling,
                   const TargetDescription &t, std::string *why = nullptr);

/// The tilings that fit, largest tiles first, at most 12 (bq up to the
/// padded rows and 128, bk up to the padded keys and 256, ring 2 to 4, the
/// largest Cube chunks that fit); for decode also the first two of them
/// with 2, 3, 4 and 6 KV splits.
std::vector<AttentionTiling> attentionTilings(const AttentionProblem &p,
                                              const TargetDescription &t);

/// GM arguments, in order: q [groups, rows, dk], k [groups, tk, dk], v
/// [groups, tk, dv] (absent with valueFromKey), the mask rows (see
/// attentionMaskRows), the sinks [groups·rows, 1] (with sinks), the
/// workspace rings S, P and O_tmp, with splits the workspace of the parts'
/// O [splits·groups·rows, dv] and log-sum-exp [splits·groups·rows, 1], with
/// saveLse the log-sum-exp of every row [groups, rows, 1], and the output
/// [tq, heads·dv] f32 (token t, head h at columns h·dv: the [T, H, D] layout
/// o_proj reads).
KernelOp buildAttentionKernel(OpBuilder &builder, Location loc, llvm::StringRef name,
                              const AttentionProblem &p, const AttentionTiling &tiling,
                              const TargetDescription &t);

/// Blocks whose schedules stand for a mix kernel of `blockDim` blocks in
/// the cost model: all of a few, else the first, middle and last (tasks are
/// dealt round-robin, so the heaviest block is among them for decode and
/// close to it for causal prefill); estimate() then takes the slowest.
llvm::SmallVector<int64_t> sampleBlocks(int64_t blockDim);

/// The index of the fastest of `count` candidate kernels and its estimate:
/// `build(b, i)` creates candidate i in a scratch module, the cost model
/// times it over the schedules of `blocks(i)`, and it is erased again; the
/// first of equally fast ones wins. What the tiling searches of the
/// attention kernels share.
llvm::Expected<std::pair<size_t, KernelEstimate>>
fastestCandidate(MLIRContext *context, size_t count,
                 llvm::function_ref<KernelOp(OpBuilder &, size_t)> build,
                 llvm::function_ref<llvm::SmallVector<int64_t>(size_t)> blocks);

using AttentionChoice = TilingSearchResult<AttentionTiling>;

/// Times every tiling of attentionTilings() on block 0's schedule and
/// returns the fastest.
llvm::Expected<AttentionChoice> searchAttentionTiling(MLIRContext *context,
                                                      const AttentionProblem &p,
                                                      const TargetDescription &t);

/// The compressed mask the kernel reads for tiles the mask cuts (as CANN's
/// FlashAttentionScore takes a compressed atten_mask for its causal and band
/// sparse modes, S29): rows a of key distance a - (bk - 1) - column, each 0
/// or -3e38, for a in [-kMaskPadRows, window + 2·bk - 1 + kMaskPadRows)
/// (row a at index a + kMaskPadRows): [attentionMaskTableRows, bk] f32. The
/// rows past [0, window + 2·bk - 1) repeat its first (all masked) or last
/// (all visible, or all masked with a window) row's pattern; with them a
/// vector core's r <= kMaskPadRows consecutive query rows read one window of
/// r table rows, one copy, on every tile whose rows stay within the pads.
std::vector<float> attentionMaskRows(const AttentionProblem &p, const AttentionTiling &tiling);
constexpr int64_t kMaskPadRows = 64;
inline int64_t attentionMaskTableRows(const AttentionProblem &p, int64_t bk) {
  return p.window + 2 * bk - 1 + 2 * kMaskPadRows;
}

/// The sinks [heads] laid out per query row, [groups·rows, 1].
std::vector<float> attentionSinkRows(const AttentionProblem &p, llvm::ArrayRef<float> sinks);

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_ATTENTIONKERNEL_H
