//===- OpSimulator.cpp - one attnedit op through its Ascend kernels --------===//
//
// Maps an op and its operands' concrete shapes to the problem the kernel
// builders take (the same mapping the lowering passes make on static
// shapes), builds the kernel once per problem, and simulates it.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/OpSimulator.h"
#include "attnedit/Ascend/AscendOps.h"
#include "attnedit/Ascend/AttentionGradKernel.h"
#include "attnedit/Ascend/CostModel.h"
#include "attnedit/Ascend/MatmulKernel.h"
#include "attnedit/Ascend/MoveKernel.h"
#include "attnedit/Ascend/ScheduleBuilder.h"
#include "attnedit/Ascend/Simulator.h"
#include "attnedit/Ascend/TransposeKernel.h"
#include "attnedit/Ascend/VectorKernel.h"
#include "attnedit/IR/AttnEditOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <set>

using namespace mlir;
using namespace mlir::attnedit;
using namespace mlir::attnedit::ascend;

int64_t HostTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

OpSimulator::OpSimulator(OpSimulatorOptions options, std::shared_ptr<const TargetDescription> t)
    : opts(std::move(options)), desc(std::move(t)), context(std::make_unique<MLIRContext>()) {
  context->loadDialect<AscendDialect, arith::ArithDialect, scf::SCFDialect>();
  kernels = ModuleOp::create(UnknownLoc::get(context.get())).getOperation();
}

OpSimulator::~OpSimulator() = default;

llvm::Expected<std::unique_ptr<OpSimulator>> OpSimulator::create(OpSimulatorOptions options) {
  auto t = TargetDescription::load(options.target);
  if (!t)
    return t.takeError();
  if (!(*t)->cubeMacsPerCycle(options.dtype)) {
    // bf16 is the default, so a user who only picked the 910A lands here:
    // say which operand types this Cube has.
    std::vector<std::string> modes;
    for (DType d : {DType::F16, DType::BF16, DType::F32})
      if ((*t)->cubeMacsPerCycle(d))
        modes.push_back(("--ascend-dtype=" + dtypeName(d)).str());
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "ascend-sim: the %s Cube has no %s mode; pass %s",
                                   (*t)->label().c_str(), dtypeName(options.dtype).str().c_str(),
                                   llvm::join(modes, " or ").c_str());
  }
  return std::unique_ptr<OpSimulator>(new OpSimulator(std::move(options), std::move(*t)));
}

llvm::Expected<std::shared_ptr<const Schedule>>
OpSimulator::schedule(const std::string &key,
                      llvm::function_ref<llvm::Expected<Operation *>(OpBuilder &)> build,
                      double *seconds) {
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it != cache.end()) {
    if (seconds)
      *seconds = it->second.second;
    return it->second.first;
  }
  OpBuilder builder(context.get());
  builder.setInsertionPointToEnd(cast<ModuleOp>(*kernels).getBody());
  llvm::Expected<Operation *> kernel = build(builder);
  if (!kernel)
    return kernel.takeError();
  auto k = cast<KernelOp>(*kernel);
  if (failed(k.verify()))
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "ascend-sim: the kernel for %s does not verify", key.c_str());
  llvm::Expected<Schedule> s = buildSchedule(k);
  if (!s)
    return s.takeError();
  auto shared = std::make_shared<const Schedule>(std::move(*s));
  llvm::Expected<KernelEstimate> e = estimate(*shared);
  if (!e)
    return e.takeError();
  cache[key] = {shared, e->seconds};
  if (seconds)
    *seconds = e->seconds;
  return shared;
}

llvm::Expected<std::shared_ptr<const Schedule>>
OpSimulator::viewed(const std::string &key, const Schedule &base,
                    llvm::ArrayRef<std::pair<size_t, SliceView>> views, double *seconds) {
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it == cache.end()) {
    auto s = std::make_shared<Schedule>(base);
    for (const auto &[arg, v] : views) {
      GmTensor &g = s->gm[arg];
      g.viewWidth = v.width;
      g.viewPitch = v.pitch;
      g.viewOffset = v.offset;
      g.viewElements = v.parentElements;
    }
    llvm::Expected<KernelEstimate> e = estimate(*s);
    if (!e)
      return e.takeError();
    it = cache.emplace(key, std::make_pair(std::shared_ptr<const Schedule>(s), e->seconds)).first;
  }
  if (seconds)
    *seconds = it->second.second;
  return it->second.first;
}

namespace {
std::string rowKey(const RowProblem &p);

std::string columnKey(const ColumnProblem &p) {
  std::string key = llvm::formatv("cols:{0}x{1}", p.rows, p.outCols).str();
  for (const ColumnPiece &c : p.pieces)
    key += llvm::formatv(":{0},{1},{2},{3}", c.inCols, c.srcCol, c.width, c.dstCol).str();
  return key;
}
} // namespace

llvm::Expected<SimulatedOp> OpSimulator::materialize(const HostTensor &x) {
  const SliceView &v = *x.view;
  ColumnProblem p{v.parentElements / v.pitch, v.width, {{v.pitch, v.offset, v.width, 0}}};
  int64_t r = columnRowsPerTile(p, *desc);
  if (r < 1)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "ascend-sim: a slice row of %lld does not fit UB",
                                   (long long)v.pitch);
  return launch(
      columnKey(p), "slice",
      [&](OpBuilder &b) -> llvm::Expected<Operation *> {
        return buildColumnKernel(b, b.getUnknownLoc(), "slice", p, r, *desc).getOperation();
      },
      {llvm::ArrayRef<float>(v.parent, v.parentElements)}, x.shape);
}

llvm::Expected<SimulatedOp>
OpSimulator::launch(const std::string &key, llvm::StringRef name,
                    llvm::function_ref<llvm::Expected<Operation *>(OpBuilder &)> build,
                    llvm::ArrayRef<llvm::ArrayRef<float>> inputs,
                    llvm::SmallVector<int64_t, 4> shape) {
  double seconds = 0;
  auto s = schedule(key, build, &seconds);
  if (!s)
    return s.takeError();
  auto out = simulate(**s, inputs);
  if (!out)
    return out.takeError();
  return SimulatedOp{std::move(shape), std::move(*out), {name.str()}, seconds, {}, {}};
}

llvm::Expected<std::vector<float>>
OpSimulator::simulate(const Schedule &schedule, llvm::ArrayRef<llvm::ArrayRef<float>> inputs) {
  auto out = simulate(schedule, inputs, 1);
  if (!out)
    return out.takeError();
  return std::move(out->front());
}

llvm::Expected<std::vector<std::vector<float>>>
OpSimulator::simulate(const Schedule &schedule, llvm::ArrayRef<llvm::ArrayRef<float>> inputs,
                      size_t count) {
  Simulator sim(schedule);
  for (auto [k, values] : llvm::enumerate(inputs))
    sim.setTensor(k, values);
  if (llvm::Error e = sim.run())
    return std::move(e);
  std::vector<std::vector<float>> out;
  for (size_t k = schedule.gm.size() - count; k < schedule.gm.size(); ++k)
    out.push_back(sim.tensor(k));
  return out;
}

llvm::Expected<SimulatedOp> OpSimulator::runAttention(const AttentionProblem &p,
                                                      llvm::ArrayRef<float> q,
                                                      llvm::ArrayRef<float> k,
                                                      llvm::ArrayRef<float> v,
                                                      llvm::ArrayRef<float> sinks,
                                                      std::vector<float> *lse) {
  std::string key =
      llvm::formatv("fa:{0}x{1}:{2}x{3}:{4}x{5}:s{6}:w{7}:sk{8}:vk{9}:{10}:lse{11}", p.groups,
                    p.headsPerGroup, p.tq, p.tk, p.dk, p.dv, p.scale, p.window, p.sinks,
                    p.valueFromKey, static_cast<int>(p.dtype), p.saveLse)
          .str();
  double seconds = 0;
  auto s = schedule(
      key,
      [&](OpBuilder &b) -> llvm::Expected<Operation *> {
        auto choice = searchAttentionTiling(context.get(), p, *desc);
        if (!choice)
          return choice.takeError();
        return buildAttentionKernel(b, b.getUnknownLoc(), "flash_attention", p, choice->tiling,
                                    *desc)
            .getOperation();
      },
      &seconds);
  if (!s)
    return s.takeError();
  // The tiling is the schedule's: the mask argument is [rows, bk].
  size_t maskArg = p.valueFromKey ? 2 : 3;
  AttentionTiling tl;
  tl.bk = (*s)->gm[maskArg].shape[1];
  std::vector<float> mask = attentionMaskRows(p, tl), sinkRows;
  std::vector<llvm::ArrayRef<float>> inputs{q, k};
  if (!p.valueFromKey)
    inputs.push_back(v);
  inputs.push_back(mask);
  if (p.sinks) {
    sinkRows = attentionSinkRows(p, sinks);
    inputs.push_back(sinkRows);
  }
  auto out = simulate(**s, inputs, p.saveLse ? 2 : 1);
  if (!out)
    return out.takeError();
  if (p.saveLse && lse)
    *lse = std::move(out->front());
  return SimulatedOp{
      {p.tq, p.heads(), p.dv}, std::move(out->back()), {"flash_attention"}, seconds};
}

llvm::Expected<OpSimulator::AttentionGrads>
OpSimulator::runAttentionGrad(const AttentionProblem &p, llvm::ArrayRef<float> q,
                              llvm::ArrayRef<float> k, llvm::ArrayRef<float> v,
                              llvm::ArrayRef<float> sinks, llvm::ArrayRef<float> o,
                              llvm::ArrayRef<float> lse, llvm::ArrayRef<float> dO) {
  std::string key = llvm::formatv("fa_grad:{0}x{1}:{2}x{3}:{4}x{5}:s{6}:w{7}:sk{8}:{9}", p.groups,
                                  p.headsPerGroup, p.tq, p.tk, p.dk, p.dv, p.scale, p.window,
                                  p.sinks, static_cast<int>(p.dtype))
                        .str();
  AttentionGrads g;
  double seconds = 0;
  auto s = schedule(
      key,
      [&](OpBuilder &b) -> llvm::Expected<Operation *> {
        auto choice = searchAttentionGradTiling(context.get(), p, *desc);
        if (!choice)
          return choice.takeError();
        return buildAttentionGradKernel(b, b.getUnknownLoc(), "flash_attention_grad", p,
                                        choice->tiling, *desc)
            .getOperation();
      },
      &seconds);
  if (!s)
    return s.takeError();
  AttentionTiling tl;
  tl.bk = (*s)->gm[6].shape[1]; // the mask rows [rows, bk]
  std::vector<float> mask = attentionMaskRows(p, tl), sinkRows;
  std::vector<llvm::ArrayRef<float>> inputs{q, k, v, dO, o, lse, mask};
  if (p.sinks) {
    sinkRows = attentionSinkRows(p, sinks);
    inputs.push_back(sinkRows);
  }
  auto out = simulate(**s, inputs, p.sinks ? 4 : 3);
  if (!out)
    return out.takeError();
  g.dq = std::move((*out)[0]);
  g.dk = std::move((*out)[1]);
  g.dv = std::move((*out)[2]);
  g.kernels.push_back("flash_attention_grad");
  g.modelledSeconds = seconds;
  if (!p.sinks)
    return g;
  // Rows [groups, headsPerGroup·tq] are heads [H, tq]: one row sum each.
  RowProblem sum{RowOp::RowSum, p.heads(), p.tq};
  int64_t r = rowsPerTile(sum, *desc);
  if (r < 1)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "ascend-sim: a sink gradient row of %lld does not fit UB",
                                   (long long)p.tq);
  auto summed = launch(
      rowKey(sum), rowOpName(sum.op),
      [&](OpBuilder &b) -> llvm::Expected<Operation *> {
        return buildRowKernel(b, b.getUnknownLoc(), rowOpName(sum.op), sum, r, *desc)
            .getOperation();
      },
      {(*out)[3]}, {p.heads()});
  if (!summed)
    return summed.takeError();
  g.dsinks = std::move(summed->values);
  g.kernels.push_back(summed->kernels.front());
  g.modelledSeconds += summed->modelledSeconds;
  return g;
}

namespace {

llvm::ArrayRef<float> values(const HostTensor &t) { return {t.data, (size_t)t.numel()}; }

/// Whether `v` (or a reshape of it) is a function result: a slice folded
/// into its consumers must have some.
bool returned(Value v) {
  for (Operation *user : v.getUsers())
    if (isa<func::ReturnOp>(user) ||
        (isa<ReshapeOp>(user) && returned(user->getResult(0))))
      return true;
  return false;
}

/// Elements after one index of `axis` in a row-major tensor of `shape`.
int64_t innerElements(llvm::ArrayRef<int64_t> shape, int64_t axis) {
  int64_t n = 1;
  for (int64_t d : shape.drop_front(axis + 1))
    n *= d;
  return n;
}

/// attnedit.paged_attention as the flash-attention kernel, one launch per
/// sequence of the block table: the sequence's queries (consecutive
/// positions, the last of its cached keys) against its keys from the first
/// its window needs, K and V gathered per cache block from the pools (the
/// gather by block table is done here; a CANN kernel's MTE2 reads the
/// blocks through the table, IFA's paged path, S27). MLA's absorbed decode
/// scores against the latent pool and reads its first v_head_dim columns as
/// the value: the kernel's value-from-key form. std::nullopt when the rows
/// do not have that shape.
std::optional<llvm::Expected<SimulatedOp>> runPaged(OpSimulator &sim, PagedAttentionOp op,
                                                    llvm::ArrayRef<HostTensor> x) {
  const HostTensor &query = x[0], &kPool = x[1], &vPool = x[2], &table = x[3], &positions = x[4];
  if (query.shape.size() != 3 || !query.data || !kPool.data || !vPool.data || !table.ints ||
      !positions.ints || table.shape.size() != 2)
    return std::nullopt;
  int64_t n = query.shape[0], heads = query.shape[1], dk = query.shape[2];
  int64_t kvHeads = op.getNumKvHeads(), dv = op.getVHeadDim(), bs = op.getBlockSize();
  int64_t seqs = table.shape[0], entries = table.shape[1], poolRows = kPool.shape[0];
  int64_t kSeg = kPool.shape[1] / kvHeads, vSeg = vPool.shape[1] / kvHeads;
  if (heads % kvHeads || kSeg != dk || dv > vSeg || (seqs != 1 && seqs != n))
    return std::nullopt;
  AttentionProblem p;
  p.groups = kvHeads;
  p.headsPerGroup = heads / kvHeads;
  p.dk = dk;
  p.dv = dv;
  p.scale = op.getScale().convertToDouble();
  p.window = op.getWindow();
  p.sinks = static_cast<bool>(op.getSinks());
  p.valueFromKey = op.getKPool() == op.getVPool() && vSeg == kSeg;
  p.dtype = sim.options().dtype;
  if (!attentionFits(p, {16, 16, 2, 16, 16}, sim.target()))
    return std::nullopt;
  llvm::ArrayRef<float> sinks = p.sinks ? values(x[5]) : llvm::ArrayRef<float>();

  SimulatedOp result{{n, heads, dv}, std::vector<float>(n * heads * dv), {}, 0};
  for (int64_t seq = 0; seq < seqs; ++seq) {
    int64_t first = seqs == 1 ? 0 : seq, count = seqs == 1 ? n : 1;
    int64_t pFirst = positions.ints[first], pLast = pFirst + count - 1;
    for (int64_t r = 0; r < count; ++r)
      if (positions.ints[first + r] != pFirst + r)
        return std::nullopt;
    int64_t lo = p.window ? std::max<int64_t>(0, pFirst - p.window + 1) : 0;
    p.tq = count;
    p.tk = pLast - lo + 1;
    auto slot = [&](int64_t pos) -> int64_t {
      int64_t block = pos / bs, entry = op.getRing() ? block % entries : block;
      int32_t id = entry < entries ? table.ints[seq * entries + entry] : -1;
      return id < 0 || (id + 1) * bs > poolRows ? -1 : id * bs + pos % bs;
    };
    std::vector<float> q(heads * p.tq * dk), k(kvHeads * p.tk * dk), v;
    for (int64_t t = 0; t < p.tq; ++t)
      for (int64_t h = 0; h < heads; ++h)
        std::copy_n(query.data + ((first + t) * heads + h) * dk, dk, &q[(h * p.tq + t) * dk]);
    if (!p.valueFromKey)
      v.resize(kvHeads * p.tk * dv);
    for (int64_t j = 0; j < p.tk; ++j) {
      int64_t s = slot(lo + j);
      if (s < 0)
        return std::nullopt;
      for (int64_t g = 0; g < kvHeads; ++g) {
        std::copy_n(kPool.data + s * kPool.shape[1] + g * kSeg, dk, &k[(g * p.tk + j) * dk]);
        if (!p.valueFromKey)
          std::copy_n(vPool.data + s * vPool.shape[1] + g * vSeg, dv, &v[(g * p.tk + j) * dv]);
      }
    }
    llvm::Expected<SimulatedOp> one = sim.runAttention(p, q, k, v, sinks);
    if (!one)
      return std::optional<llvm::Expected<SimulatedOp>>(one.takeError());
    std::copy(one->values.begin(), one->values.end(), result.values.begin() + first * heads * dv);
    result.kernels.push_back("flash_attention");
    result.modelledSeconds += one->modelledSeconds;
  }
  return std::optional<llvm::Expected<SimulatedOp>>(std::move(result));
}

/// Element-wise rows wider than 4096 values are viewed as [rows·cols/w, w]
/// (w the largest divisor up to 4096, research §9.2), as the pass does.
void splitWideRows(RowProblem &p) {
  if (p.cols <= 4096)
    return;
  for (int64_t d = 4096; d >= 1; --d)
    if (p.cols % d == 0) {
      p.rows = p.rows * p.cols / d;
      p.cols = d;
      return;
    }
}

std::string rowKey(const RowProblem &p) {
  return llvm::formatv("row:{0}:{1}x{2}:eps={3}:f={4}:h={5}:inv={6}:th={7}:il={8}:tau={9}",
                       rowOpName(p.op), p.rows, p.cols, p.eps, p.factor, p.heads, p.inverse,
                       p.theta, p.interleaved, p.temperature)
      .str();
}

} // namespace

std::optional<llvm::Expected<SimulatedOp>>
OpSimulator::run(Operation *op, llvm::ArrayRef<HostTensor> operands) {
  using Result = std::optional<llvm::Expected<SimulatedOp>>;
  const TargetDescription &t = *desc;
  for (const HostTensor &x : operands)
    if (x.numel() == 0)
      return std::nullopt;

  // The kernel `build` creates (once per `key`), run on `inputs`. An input
  // that is a folded slice's values is bound where the slice lies.
  std::set<unsigned> read;
  auto runKernel = [&](const std::string &key, llvm::StringRef name,
                       llvm::function_ref<llvm::Expected<Operation *>(OpBuilder &)> build,
                       std::vector<llvm::ArrayRef<float>> inputs,
                       llvm::SmallVector<int64_t, 4> shape) -> Result {
    double seconds = 0;
    auto s = schedule(key, build, &seconds);
    if (!s)
      return Result(s.takeError());
    llvm::SmallVector<std::pair<size_t, SliceView>> views;
    std::string viewKey = key;
    for (auto [k, in] : llvm::enumerate(inputs))
      for (auto [i, x] : llvm::enumerate(operands))
        if (x.view && x.data == in.data() && (int64_t)in.size() == x.numel()) {
          views.push_back({k, *x.view});
          viewKey += llvm::formatv(":view{0}:{1},{2},{3},{4}", k, x.view->width, x.view->pitch,
                                   x.view->offset, x.view->parentElements)
                         .str();
          in = {x.view->parent, (size_t)x.view->parentElements};
          read.insert(i);
          break;
        }
    if (!views.empty()) {
      s = viewed(viewKey, **s, views, &seconds);
      if (!s)
        return Result(s.takeError());
    }
    auto out = simulate(**s, inputs);
    if (!out)
      return Result(out.takeError());
    return Result(SimulatedOp{std::move(shape), std::move(*out), {name.str()}, seconds});
  };
  auto built = [](KernelOp k) -> llvm::Expected<Operation *> { return k.getOperation(); };

  // A Cube matmul C = A·B or A·Wᵀ.
  auto runMatmul = [&](MatmulProblem p, llvm::ArrayRef<float> a, llvm::ArrayRef<float> b,
                       llvm::SmallVector<int64_t, 4> shape,
                       std::optional<DType> dtype = std::nullopt) -> Result {
    p.dtype = dtype.value_or(opts.dtype);
    p.target = opts.target;
    std::string key = llvm::formatv("mm:{0}:{1}x{2}x{3}:t{4}:{5}", p.batch, p.m, p.n, p.k,
                                    p.transposedB, static_cast<int>(p.dtype))
                          .str();
    return runKernel(
        key, "matmul",
        [&](OpBuilder &b) -> llvm::Expected<Operation *> {
          auto choice = searchMatmulTiling(context.get(), p, t);
          if (!choice)
            return choice.takeError();
          return built(buildMatmulKernel(b, b.getUnknownLoc(), "matmul", p, choice->tiling, t));
        },
        {a, b}, std::move(shape));
  };

  // Rows gathered or scattered by ids read on the device; a scatter's
  // output starts as `into` (in place).
  auto runIndexedMove = [&](const IndexedMoveProblem &p, llvm::ArrayRef<float> ids,
                            llvm::ArrayRef<float> input, llvm::ArrayRef<float> into) -> Result {
    int64_t r = indexedMoveRowsPerTile(p, t);
    if (r < 1)
      return std::nullopt;
    bool gather = p.kind == IndexedMoveProblem::Kind::Gather;
    std::string name = gather ? "gather" : "scatter";
    std::vector<llvm::ArrayRef<float>> inputs{ids, input};
    if (!gather)
      inputs.push_back(into);
    return runKernel(
        llvm::formatv("indexed:{0}:{1}x{2}:{3}", name, p.rows, p.cols, p.tableRows).str(), name,
        [&](OpBuilder &b) {
          return built(buildIndexedMoveKernel(b, b.getUnknownLoc(), name, p, r, t));
        },
        inputs, {gather ? p.rows : p.tableRows, p.cols});
  };

  // A Vector row kernel over [rows, cols] views of the operands.
  auto runRows = [&](RowProblem p, std::vector<llvm::ArrayRef<float>> inputs,
                     llvm::SmallVector<int64_t, 4> shape) -> Result {
    int64_t r = rowsPerTile(p, t);
    // A softmax row too long for UB goes through in column chunks.
    for (int64_t w = std::min<int64_t>(p.cols, 4096); r < 1 && p.op == RowOp::Softmax && w >= 8;
         --w)
      if (p.cols % w == 0) {
        p.chunk = w;
        r = rowsPerTile(p, t);
      }
    if (r < 1)
      return std::nullopt;
    return runKernel(
        rowKey(p) + llvm::formatv(":c{0}", p.chunk).str(), rowOpName(p.op),
        [&](OpBuilder &b) {
          return built(buildRowKernel(b, b.getUnknownLoc(), rowOpName(p.op), p, r, t));
        },
        inputs, std::move(shape));
  };

  // `op` over the rows (the last axis) of the first operand.
  auto rowsOf = [&](RowOp op, double eps = 0) {
    const HostTensor &x = operands[0];
    int64_t cols = x.shape.empty() ? 1 : x.shape.back(); // a scalar is one row of one
    return RowProblem{op, x.numel() / cols, cols, eps};
  };
  // The operands in order as the row inputs (element-wise: wide rows split).
  auto allOperands = [&] {
    std::vector<llvm::ArrayRef<float>> in;
    for (const HostTensor &x : operands)
      in.push_back(values(x));
    return in;
  };
  auto elementwise = [&](RowProblem p) -> Result {
    splitWideRows(p);
    return runRows(p, allOperands(), operands[0].shape);
  };

  // [batch, rows, cols] -> [batch, cols, rows].
  auto runTranspose = [&](const TransposeProblem &p, llvm::ArrayRef<float> x,
                          llvm::SmallVector<int64_t, 4> shape) -> Result {
    return runKernel(
        llvm::formatv("transpose:{0}x{1}x{2}", p.batch, p.rows, p.cols).str(), "transpose",
        [&](OpBuilder &b) {
          return built(buildTransposeKernel(b, b.getUnknownLoc(), "transpose", p, t));
        },
        {x}, std::move(shape));
  };

  // [batch, rows, cols] -> [batch, cols] summed over rows.
  auto runColumnSum = [&](const ColumnSumProblem &p, llvm::ArrayRef<float> x,
                          llvm::SmallVector<int64_t, 4> shape) -> Result {
    return runKernel(
        llvm::formatv("colsum:{0}x{1}x{2}:f{3}", p.batch, p.rows, p.cols, p.factor).str(),
        "column_sum",
        [&](OpBuilder &b) {
          return built(buildColumnSumKernel(b, b.getUnknownLoc(), "column_sum", p, t));
        },
        {x}, std::move(shape));
  };

  // `first`, then `next` on its values: one result, both kernels counted.
  auto then = [](Result first, llvm::function_ref<Result(const SimulatedOp &)> next) -> Result {
    if (!first || !*first)
      return first;
    Result second = next(**first);
    if (second && *second) {
      (*second)->kernels.insert((*second)->kernels.begin(), (*first)->kernels.begin(),
                                (*first)->kernels.end());
      (*second)->modelledSeconds += (*first)->modelledSeconds;
    }
    return second;
  };

  // Column ranges side by side (slice, concat on the last axis).
  auto runColumns = [&](const ColumnProblem &p, std::vector<llvm::ArrayRef<float>> inputs,
                        llvm::SmallVector<int64_t, 4> shape) -> Result {
    int64_t r = columnRowsPerTile(p, t);
    if (r < 1)
      return std::nullopt;
    std::string name = p.pieces.size() == 1 ? "slice" : "concat";
    return runKernel(
        columnKey(p), name,
        [&](OpBuilder &b) { return built(buildColumnKernel(b, b.getUnknownLoc(), name, p, r, t)); },
        inputs, std::move(shape));
  };

  // Rows moved through UB (transpose of the leading dims, repeat_kv).
  auto runMove = [&](const MoveProblem &p, const HostTensor &x,
                     llvm::SmallVector<int64_t, 4> shape) -> Result {
    int64_t r = moveRowsPerTile(p, t);
    if (r < 1)
      return std::nullopt;
    std::string name = p.kind == MoveProblem::Kind::Transpose ? "transpose" : "repeat_kv";
    return runKernel(
        llvm::formatv("move:{0}:{1}x{2}x{3}:r{4}", name, p.a, p.b, p.cols, p.repeats).str(), name,
        [&](OpBuilder &b) { return built(buildMoveKernel(b, b.getUnknownLoc(), name, p, r, t)); },
        {values(x)}, std::move(shape));
  };

  Result result = llvm::TypeSwitch<Operation *, Result>(op)
      .Case([&](LinearOp l) -> Result {
        const HostTensor &x = operands[0], &w = operands[1];
        MatmulProblem p;
        p.transposedB = true;
        p.k = x.shape.back();
        p.n = w.shape[0];
        p.m = x.numel() / p.k;
        auto shape = x.shape;
        shape.back() = p.n;
        // The bias: a Vector kernel adding the replicated row after FixPipe
        // (the 910B's bias table in the Cube path, S20's TCubeTiling isBias,
        // is not modelled).
        RowProblem bias{RowOp::BiasAdd, p.m, p.n};
        if (l.getBias() && rowsPerTile(bias, t) < 1)
          return std::nullopt;
        Result product = runMatmul(p, values(x), values(w), shape);
        if (!l.getBias() || !product || !*product)
          return product;
        Result sum = runRows(bias, {(*product)->values, values(operands[2])}, shape);
        if (sum && *sum) {
          (*sum)->kernels.insert((*sum)->kernels.begin(), "matmul");
          (*sum)->modelledSeconds += (*product)->modelledSeconds;
        }
        return sum;
      })
      .Case([&](MatmulOp m) -> Result {
        const HostTensor &a = operands[0], &b = operands[1];
        if (a.shape.size() < 2 || b.shape.size() < 2)
          return std::nullopt;
        MatmulProblem p;
        p.m = a.shape[a.shape.size() - 2];
        p.k = a.shape.back();
        p.n = b.shape.back();
        p.batch = a.numel() / (p.m * p.k);
        if (b.numel() != p.batch * p.k * p.n)
          return std::nullopt;
        auto shape = a.shape;
        shape.back() = p.n;
        return runMatmul(p, values(a), values(b), shape);
      })
      .Case([&](RmsNormOp n) -> Result {
        return runRows(rowsOf(RowOp::RmsNorm, n.getEps().convertToDouble()), allOperands(),
                       operands[0].shape);
      })
      .Case([&](SoftmaxOp s) -> Result {
        const HostTensor &x = operands[0];
        if (static_cast<int64_t>(s.getAxis()) != (int64_t)x.shape.size() - 1)
          return std::nullopt;
        RowProblem p = rowsOf(RowOp::Softmax);
        if (!s.getSinks())
          return runRows(p, {values(x)}, x.shape);
        // Each row's sink logit as a column (head = row / rows per head, as
        // kernels::softmax reads it), like the fused kernel's sink rows.
        const HostTensor &sinks = operands[1];
        if (x.shape.size() < 2 || sinks.numel() != x.shape[0] || p.rows % x.shape[0])
          return std::nullopt;
        p.op = RowOp::SoftmaxSinks;
        std::vector<float> column(p.rows);
        for (int64_t r = 0; r < p.rows; ++r)
          column[r] = sinks.data[r / (p.rows / x.shape[0])];
        return runRows(p, {values(x), column}, x.shape);
      })
      .Case([&](ScaleOp s) -> Result {
        RowProblem p = rowsOf(RowOp::Scale);
        p.factor = s.getFactor().convertToDouble();
        return elementwise(p);
      })
      .Case([&](SigmoidOp) { return elementwise(rowsOf(RowOp::Sigmoid)); })
      .Case([&](SiluOp) { return elementwise(rowsOf(RowOp::Silu)); })
      .Case<AddOp, MulOp>([&](Operation *) -> Result {
        const HostTensor &a = operands[0], &b = operands[1];
        if (a.shape != b.shape || a.shape.empty())
          return std::nullopt; // broadcasting operands are not lowered
        return elementwise(rowsOf(isa<AddOp>(op) ? RowOp::Add : RowOp::Mul));
      })
      .Case([&](RopeOp r) -> Result {
        const HostTensor &x = operands[0], &pos = operands[1];
        // Whole heads, no Llama-3 scaling (VectorKernel.h).
        if (x.shape.size() != 3 || !pos.ints || r.getLlama3Scaling() ||
            (int64_t)r.getRotaryDim() != x.shape[2] || x.shape[2] % 2)
          return std::nullopt;
        RowProblem p{RowOp::Rope, x.shape[0], x.shape[1] * x.shape[2]};
        p.heads = x.shape[1];
        p.inverse = r.getInverse();
        p.theta = r.getTheta().convertToDouble();
        p.interleaved = r.getStyle() == RopeStyle::Interleaved;
        int64_t d = x.shape[2];
        std::vector<float> positions(pos.ints, pos.ints + pos.numel()), inv, index;
        for (int64_t i = 0; i < d / 2; ++i) {
          auto f = static_cast<float>(std::pow(p.theta, -2.0 * i / d));
          if (!p.interleaved) {
            inv.push_back(f);
            continue;
          }
          inv.insert(inv.end(), {-f, f});
          index.insert(index.end(), {float(2 * i + 1), float(2 * i)});
        }
        if (p.interleaved)
          return runRows(p, {values(x), positions, inv, index}, x.shape);
        return runRows(p, {values(x), positions, inv}, x.shape);
      })
      .Case([&](TransposeOp tr) -> Result {
        const HostTensor &x = operands[0];
        auto perm = tr.getPermutation();
        int64_t rank = x.shape.size();
        if (!x.data || (int64_t)perm.size() != rank || rank < 2)
          return std::nullopt;
        // The leading two of three dims swap: rows of D move whole.
        if (rank == 3 && perm[0] == 1 && perm[1] == 0 && perm[2] == 2) {
          MoveProblem p{MoveProblem::Kind::Transpose, x.shape[0], x.shape[1], x.shape[2]};
          return runMove(p, x, {x.shape[1], x.shape[0], x.shape[2]});
        }
        // The last two swap, leading dims kept: tiles through vtranspose.
        for (int64_t d = 0; d < rank - 2; ++d)
          if (perm[d] != d)
            return std::nullopt;
        if (perm[rank - 2] != rank - 1 || perm[rank - 1] != rank - 2)
          return std::nullopt;
        TransposeProblem p{x.numel() / (x.shape[rank - 2] * x.shape[rank - 1]), x.shape[rank - 2],
                           x.shape[rank - 1]};
        auto shape = x.shape;
        std::swap(shape[rank - 2], shape[rank - 1]);
        return runTranspose(p, values(x), shape);
      })
      .Case([&](RepeatKvOp rk) -> Result {
        const HostTensor &x = operands[0];
        if (x.shape.size() != 3 || !x.data)
          return std::nullopt;
        int64_t rep = rk.getRepeats();
        MoveProblem p{MoveProblem::Kind::RepeatKv, x.shape[0], x.shape[1], x.shape[2], rep};
        return runMove(p, x, {x.shape[0] * rep, x.shape[1], x.shape[2]});
      })
      .Case([&](SiluGradOp) { return elementwise(rowsOf(RowOp::SiluGrad)); })
      .Case([&](SigmoidGradOp) { return elementwise(rowsOf(RowOp::SigmoidGrad)); })
      .Case([&](SoftmaxGradOp sg) -> Result {
        if (static_cast<int64_t>(sg.getAxis()) != (int64_t)operands[0].shape.size() - 1)
          return std::nullopt;
        return runRows(rowsOf(RowOp::SoftmaxGrad), allOperands(), operands[0].shape);
      })
      .Case([&](RmsNormGradOp n) -> Result {
        // Row inputs x and dy, then the weight.
        const HostTensor &x = operands[0];
        return runRows(rowsOf(RowOp::RmsNormGrad, n.getEps().convertToDouble()),
                       {values(x), values(operands[2]), values(operands[1])}, x.shape);
      })
      .Case([&](RmsNormWeightGradOp n) -> Result {
        // dy·x/rms per row, then summed over the rows.
        RowProblem p = rowsOf(RowOp::RmsNormWeightRows, n.getEps().convertToDouble());
        return then(runRows(p, allOperands(), operands[0].shape),
                    [&](const SimulatedOp &rows) {
                      return runColumnSum({1, p.rows, p.cols}, rows.values, {p.cols});
                    });
      })
      .Case([&](SinkGradOp) -> Result {
        const HostTensor &y = operands[0];
        if (y.shape.size() != 3)
          return std::nullopt;
        int64_t heads = y.shape[0], rows = y.shape[1];
        RowProblem p{RowOp::SinkRows, heads * rows, y.shape[2]};
        return then(runRows(p, {values(y), values(operands[1])}, {heads * rows, 1}),
                    [&](const SimulatedOp &perRow) {
                      return runColumnSum({heads, rows, 1}, perRow.values, {heads});
                    });
      })
      .Case([&](KlLossOp l) -> Result {
        // Per-row KL, then the mean over rows.
        RowProblem p = rowsOf(RowOp::KlRows);
        p.temperature = l.getTemperature().convertToDouble();
        return then(runRows(p, allOperands(), {p.rows, 1}),
                    [&](const SimulatedOp &perRow) {
                      ColumnSumProblem mean{1, p.rows, 1, 1.0 / p.rows};
                      return runColumnSum(mean, perRow.values, {});
                    });
      })
      .Case([&](LossGradOp l) -> Result {
        // KL's student side: g / rows · (q - p) / τ (LossKernels.cpp).
        if (l.getKind() != LossKind::Kl || l.getOperand() != 1 || operands[2].numel() != 1)
          return std::nullopt;
        RowProblem p = rowsOf(RowOp::KlGrad);
        p.temperature = l.getTemperature().convertToDouble();
        p.factor = 1.0 / (p.rows * p.temperature);
        return runRows(p, allOperands(), operands[0].shape);
      })
      .Case([&](ReduceSumOp rs) -> Result {
        const HostTensor &x = operands[0];
        int64_t axis = rs.getAxis(), outer = 1, inner = 1;
        if (axis < 0 || axis >= (int64_t)x.shape.size())
          return std::nullopt;
        for (int64_t d = 0; d < axis; ++d)
          outer *= x.shape[d];
        for (int64_t d = axis + 1; d < (int64_t)x.shape.size(); ++d)
          inner *= x.shape[d];
        auto shape = x.shape;
        if (rs.getKeepDims())
          shape[axis] = 1;
        else
          shape.erase(shape.begin() + axis);
        if (inner == 1)
          return runRows({RowOp::RowSum, outer, x.shape[axis]}, {values(x)}, shape);
        return runColumnSum({outer, x.shape[axis], inner}, values(x), shape);
      })
      .Case([&](EmbeddingOp) -> Result {
        // A row gather by ids the kernel reads on the device.
        const HostTensor &table = operands[0], &ids = operands[1];
        if (table.shape.size() != 2 || !ids.ints || ids.shape.size() != 1 || !table.data)
          return std::nullopt;
        IndexedMoveProblem p{IndexedMoveProblem::Kind::Gather, ids.shape[0], table.shape[1],
                             table.shape[0]};
        std::vector<float> idColumn(ids.ints, ids.ints + p.rows);
        for (float id : idColumn)
          if (id < 0 || id >= p.tableRows)
            return std::nullopt; // the reference names the bad id
        return runIndexedMove(p, idColumn, values(table), {});
      })
      .Case([&](CacheWriteOp w) -> Result {
        // The rows scattered into the pool in place at their slots. The slot
        // of each row (block table entry · block size + position in the
        // block) is computed on the host, as vLLM's scheduler builds the
        // slot mapping its reshape_and_cache kernel takes.
        const HostTensor &pool = operands[0], &rows = operands[1], &table = operands[2],
                         &positions = operands[3];
        if (pool.shape.size() != 2 || rows.shape.size() != 2 || !pool.data || !rows.data ||
            !table.ints || table.shape.size() != 2 || !positions.ints ||
            rows.shape[1] != pool.shape[1] || positions.numel() != rows.shape[0])
          return std::nullopt;
        int64_t n = rows.shape[0], bs = w.getBlockSize(), seqs = table.shape[0],
                entries = table.shape[1], poolRows = pool.shape[0];
        if (bs <= 0 || (seqs != 1 && seqs != n))
          return std::nullopt;
        std::vector<float> slots(n);
        for (int64_t i = 0; i < n; ++i) {
          int64_t seq = seqs == 1 ? 0 : i, pos = positions.ints[i], block = pos / bs;
          int64_t entry = w.getRing() ? block % std::max<int64_t>(entries, 1) : block;
          int64_t id = pos >= 0 && entry < entries ? table.ints[seq * entries + entry] : -1;
          if (id < 0 || (id + 1) * bs > poolRows)
            return std::nullopt; // the reference names the bad slot
          slots[i] = float(id * bs + pos % bs);
        }
        IndexedMoveProblem p{IndexedMoveProblem::Kind::Scatter, n, rows.shape[1], poolRows};
        return runIndexedMove(p, slots, values(rows), values(pool));
      })
      .Case([&](PagedAttentionOp pa) -> Result { return runPaged(*this, pa, operands); })
      .Case([&](CausalMaskOp m) -> Result {
        const HostTensor &x = operands[0];
        // The mask kernel has no packed sequences: the evaluator masks those.
        if (x.shape.size() < 2 || !x.data || m.getSegments() != 1)
          return std::nullopt;
        MaskProblem p;
        p.tq = x.shape[x.shape.size() - 2];
        p.tk = x.shape.back();
        p.batch = x.numel() / (p.tq * p.tk);
        p.window = m.getWindow();
        p.zeroFill = m.getZeroFill();
        int64_t r = maskRowsPerTile(p, t);
        if (p.tq > p.tk || r < 1)
          return std::nullopt;
        return runKernel(
            llvm::formatv("mask:{0}x{1}x{2}:w{3}:z{4}", p.batch, p.tq, p.tk, p.window, p.zeroFill)
                .str(),
            "causal_mask",
            [&](OpBuilder &b) {
              return built(buildMaskKernel(b, b.getUnknownLoc(), "causal_mask", p, r, t));
            },
            {values(x)}, x.shape);
      })
      .Case([&](SliceOp sl) -> Result {
        // On any axis: row-major [outer, n, inner] is [outer, n·inner], and
        // the slice its columns [offset·inner, (offset + size)·inner).
        const HostTensor &x = operands[0];
        int64_t axis = sl.getAxis();
        if (!x.data || axis >= (int64_t)x.shape.size())
          return std::nullopt;
        int64_t inner = innerElements(x.shape, axis);
        ColumnProblem p{x.numel() / (x.shape[axis] * inner), (int64_t)sl.getSize() * inner, {}};
        p.pieces.push_back(
            {x.shape[axis] * inner, (int64_t)sl.getOffset() * inner, p.outCols, 0});
        auto shape = x.shape;
        shape[axis] = sl.getSize();
        if (opts.foldSlices && !x.view && !returned(sl.getResult())) {
          // No kernel: its consumers' copies read the columns in place.
          const ColumnPiece &c = p.pieces.front();
          SimulatedOp folded{shape, std::vector<float>(p.rows * c.width), {}, 0, {}, {}};
          for (int64_t row = 0; row < p.rows; ++row)
            std::copy_n(x.data + row * c.inCols + c.srcCol, c.width,
                        folded.values.begin() + row * c.width);
          folded.folded = SliceView{x.data, x.numel(), c.inCols, c.srcCol, c.width};
          return Result(std::move(folded));
        }
        return runColumns(p, {values(x)}, shape);
      })
      .Case([&](ConcatOp cc) -> Result {
        // On any axis, as the slice: each input a column range of the
        // [outer, Σ n·inner] view of the result.
        const HostTensor &x = operands[0];
        int64_t axis = cc.getAxis();
        if (axis >= (int64_t)x.shape.size())
          return std::nullopt;
        int64_t inner = innerElements(x.shape, axis);
        ColumnProblem p{x.numel() / (x.shape[axis] * inner), 0, {}};
        std::vector<llvm::ArrayRef<float>> inputs;
        int64_t size = 0;
        for (const HostTensor &in : operands) {
          if (!in.data || in.shape.size() != x.shape.size() ||
              innerElements(in.shape, axis) != inner ||
              in.numel() / (in.shape[axis] * inner) != p.rows)
            return std::nullopt;
          int64_t cols = in.shape[axis] * inner;
          p.pieces.push_back({cols, 0, cols, p.outCols});
          p.outCols += cols;
          size += in.shape[axis];
          inputs.push_back(values(in));
        }
        auto shape = x.shape;
        shape[axis] = size;
        return runColumns(p, inputs, shape);
      })
      .Case([&](BroadcastOp bc) -> Result {
        const HostTensor &x = operands[0];
        auto want = bc.getType().getShape();
        // [..., 1] -> [..., D]: each value along its row (vbrcb).
        if (x.data && !x.shape.empty() && want.size() == x.shape.size() && x.shape.back() == 1 &&
            !ShapedType::isDynamic(want.back()) && want.back() != 1) {
          bool same = true;
          for (size_t d = 0; d + 1 < want.size(); ++d)
            same &= ShapedType::isDynamic(want[d]) || want[d] == x.shape[d];
          if (same) {
            auto shape = x.shape;
            shape.back() = want.back();
            return runRows({RowOp::BroadcastCol, x.numel(), want.back()}, {values(x)}, shape);
          }
        }
        if (!x.data || x.shape.size() != 3 || want.size() != 3 || x.shape[1] != 1 ||
            ShapedType::isDynamic(want[1]) || want[1] == 1 ||
            (!ShapedType::isDynamic(want[2]) && want[2] != x.shape[2]))
          return std::nullopt;
        // [A, 1, D] -> [A, n, D]: every row repeated n times (repeat_kv's
        // kernel with one token per head).
        MoveProblem p{MoveProblem::Kind::RepeatKv, x.shape[0], 1, x.shape[2], want[1]};
        return runMove(p, x, {x.shape[0], want[1], x.shape[2]});
      })
      .Default([](Operation *) -> Result { return std::nullopt; });
  if (result && *result)
    (*result)->viewsRead.assign(read.begin(), read.end());
  return result;
}
