//===- AscendOps.cpp - ascend types, verifiers, pipes --------------------===//
//
// Local checks live in each op's verifier; checks that need the hardware
// (capacity, alignment, legal paths, pipes of the core type, event ids) run
// in the kernel's verifier against its target description.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/AscendOps.h"
#include "attnedit/Ascend/TargetDescription.h"
#include "attnedit/Ascend/TileLayout.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/OpImplementation.h"

#include "llvm/ADT/STLExtras.h"

using namespace mlir;
using namespace mlir::attnedit::ascend;

//===----------------------------------------------------------------------===//
// BufType
//===----------------------------------------------------------------------===//

Type BufType::parse(AsmParser &parser) {
  std::string spaceName, layoutName;
  SmallVector<int64_t> shape;
  Type element;
  if (parser.parseLess() || parser.parseKeywordOrString(&spaceName) || parser.parseComma() ||
      parser.parseDimensionList(shape, /*allowDynamic=*/false) || parser.parseType(element) ||
      parser.parseComma() || parser.parseKeywordOrString(&layoutName) || parser.parseGreater())
    return {};
  std::optional<Space> space = symbolizeSpace(spaceName);
  std::optional<Layout> layout = symbolizeLayout(layoutName);
  if (!space) {
    parser.emitError(parser.getNameLoc(), "unknown address space '")
        << spaceName << "' (expected gm, l1, l0a, l0b, l0c or ub)";
    return {};
  }
  if (!layout) {
    parser.emitError(parser.getNameLoc(), "unknown layout '")
        << layoutName << "' (expected nd, nz, zz or zn)";
    return {};
  }
  return getChecked([&] { return parser.emitError(parser.getNameLoc()); },
                    parser.getContext(), *space, ArrayRef<int64_t>(shape), element,
                    *layout);
}

void BufType::print(AsmPrinter &p) const {
  p << "<" << stringifySpace(getSpace()) << ", ";
  for (int64_t d : getShape())
    p << d << "x";
  p << getElementType() << ", " << stringifyLayout(getLayout()) << ">";
}

int64_t BufType::getElementBytes() const {
  return (getElementType().getIntOrFloatBitWidth() + 7) / 8;
}

int64_t BufType::getBytes() const {
  int64_t lead = 1;
  for (int64_t d : getShape().drop_back(2))
    lead *= d;
  if (getShape().size() < 2)
    return lead * getShape().back() * getElementBytes();
  return lead * tileBytes(getLayout(), getRows(), getCols(), getElementBytes(),
                          getSpace() == Space::GM);
}

LogicalResult BufType::verify(function_ref<InFlightDiagnostic()> emitError, Space space,
                              ArrayRef<int64_t> shape, Type element, Layout layout) {
  if (!element.isF32() && !element.isF16() && !element.isBF16())
    return emitError() << "ascend buffers hold f32, f16 or bf16 elements, not " << element;
  if (shape.empty() || llvm::any_of(shape, [](int64_t d) { return d <= 0; }))
    return emitError() << "buffer dimensions must be positive";
  if (space != Space::GM && shape.size() != 2)
    return emitError() << "on-chip buffers are 2-D tiles";
  // S7: L1 holds ND or NZ tiles, L0A zZ, L0B nZ (K innermost), L0C zN, UB ND.
  switch (space) {
  case Space::GM:
  case Space::UB:
    if (layout != Layout::ND)
      return emitError() << stringifySpace(space) << " buffers are ND";
    break;
  case Space::L1:
    if (layout != Layout::ND && layout != Layout::NZ)
      return emitError() << "l1 buffers are ND or NZ";
    break;
  case Space::L0A:
    if (layout != Layout::ZZ)
      return emitError() << "l0a buffers are ZZ (the Cube's left-operand layout)";
    break;
  case Space::L0B:
    if (layout != Layout::ZN)
      return emitError() << "l0b buffers are ZN (the Cube's right-operand layout)";
    break;
  case Space::L0C:
    if (layout != Layout::NZ)
      return emitError() << "l0c buffers are NZ";
    if (!element.isF32())
      return emitError() << "l0c accumulates in f32";
    break;
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Pipes
//===----------------------------------------------------------------------===//

Pipe CopyOp::getExecutingPipe() { return getPipe(); }
Pipe MmadOp::getExecutingPipe() { return Pipe::M; }
Pipe SetFlagOp::getExecutingPipe() { return getSrcPipe(); }
Pipe WaitFlagOp::getExecutingPipe() { return getDstPipe(); }
Pipe BarrierOp::getExecutingPipe() { return getPipe(); }
Pipe CrossSetOp::getExecutingPipe() { return getPipe(); }
// S23: CrossCoreWaitFlag stalls the scalar unit, hence every later issue.
Pipe CrossWaitOp::getExecutingPipe() { return Pipe::S; }
#define VECTOR_PIPE(Op)                                                                            \
  Pipe Op::getExecutingPipe() { return Pipe::V; }
VECTOR_PIPE(VAddOp)
VECTOR_PIPE(VSubOp)
VECTOR_PIPE(VMulOp)
VECTOR_PIPE(VDivOp)
VECTOR_PIPE(VMaxOp)
VECTOR_PIPE(VExpOp)
VECTOR_PIPE(VSqrtOp)
VECTOR_PIPE(VRecOp)
VECTOR_PIPE(VSinOp)
VECTOR_PIPE(VCosOp)
VECTOR_PIPE(VLnOp)
VECTOR_PIPE(VTransposeOp)
VECTOR_PIPE(VAddsOp)
VECTOR_PIPE(VMulsOp)
VECTOR_PIPE(VDupOp)
VECTOR_PIPE(VCastOp)
VECTOR_PIPE(VReduceOp)
VECTOR_PIPE(VBrcbOp)
VECTOR_PIPE(VGatherOp)
#undef VECTOR_PIPE

//===----------------------------------------------------------------------===//
// Memory
//===----------------------------------------------------------------------===//

LogicalResult AllocOp::verify() {
  auto type = cast<BufType>(getType());
  if (type.getSpace() == Space::GM)
    return emitOpError("allocates on-chip buffers; GM tensors are kernel arguments");
  if (getOffsetAttr().getInt() < 0 || getSlotsAttr().getInt() < 1)
    return emitOpError("needs offset >= 0 and slots >= 1");
  return success();
}

LogicalResult SlotOp::verify() {
  if (!getBuffer().getDefiningOp<AllocOp>())
    return emitOpError("selects a slot of an ascend.alloc result");
  return success();
}

//===----------------------------------------------------------------------===//
// Data movement and Cube
//===----------------------------------------------------------------------===//

static std::optional<int64_t> constantIndex(Value v) {
  APInt value;
  if (matchPattern(v, m_ConstantInt(&value)))
    return value.getSExtValue();
  return std::nullopt;
}

/// Checks a window of `rows` x `cols` at `offsets` of `type`: offsets count,
/// and where they are constants, bounds (on chip) and fractal alignment.
static LogicalResult verifyWindow(Operation *op, StringRef which, BufType type,
                                  OperandRange offsets, int64_t rows, int64_t cols) {
  if (offsets.size() != type.getShape().size())
    return op->emitOpError() << which << " has " << offsets.size() << " offsets for a rank-"
                             << type.getShape().size() << " buffer";
  if (type.getShape().size() < 2)
    return op->emitOpError() << which << " must have rank >= 2";
  bool gm = type.getSpace() == Space::GM;
  int64_t rowStep, colStep;
  windowGranule(type.getLayout(), type.getElementBytes(), gm, rowStep, colStep);
  std::optional<int64_t> r = constantIndex(offsets[offsets.size() - 2]);
  std::optional<int64_t> c = constantIndex(offsets[offsets.size() - 1]);
  if (!gm) {
    if (rows > type.getRows() || cols > type.getCols() || (r && *r + rows > type.getRows()) ||
        (c && *c + cols > type.getCols()))
      return op->emitOpError() << which << " window " << rows << "x" << cols
                               << " does not fit the " << type.getRows() << "x" << type.getCols()
                               << " tile";
    if ((r && *r % rowStep) || (c && *c % colStep))
      return op->emitOpError() << which << " window offset is not aligned to the "
                               << rowStep << "x" << colStep << " granule of its "
                               << stringifyLayout(type.getLayout()) << " layout";
  }
  return success();
}

LogicalResult CopyOp::verify() {
  auto src = cast<BufType>(getSrc().getType()), dst = cast<BufType>(getDst().getType());
  if (getSizes().size() != 2 || getSizes()[0] <= 0 || getSizes()[1] <= 0)
    return emitOpError("sizes must be two positive extents [rows, cols]");
  int64_t rows = getSizes()[0], cols = getSizes()[1];
  if (getTranspose() && getPipe() != Pipe::MTE1)
    return emitOpError("transposes only on MTE1 (LoadData with transpose)");
  if (src.getElementType() != dst.getElementType() && src.getSpace() != Space::L0C)
    return emitOpError("converts element types only out of l0c (FixPipe)");
  if (src.getSpace() == dst.getSpace())
    return emitOpError("moves between two address spaces");
  if (failed(verifyWindow(*this, "source", src, getSrcOffsets(), getTranspose() ? cols : rows,
                          getTranspose() ? rows : cols)) ||
      failed(verifyWindow(*this, "destination", dst, getDstOffsets(), rows, cols)))
    return failure();
  if (!getIndex()) {
    if (getIndexDim() || !getIndexOffsets().empty())
      return emitOpError("index_dim and index offsets need an index tile");
    return success();
  }
  // Data-dependent offset: one element of an f32 UB tile, added along one
  // dimension of the GM side.
  auto index = cast<BufType>(getIndex().getType());
  if (index.getSpace() != Space::UB || !index.getElementType().isF32())
    return emitOpError("the index tile must be an f32 ub buffer");
  if (getIndexOffsets().size() != index.getShape().size())
    return emitOpError() << "the index has " << getIndexOffsets().size()
                         << " offsets for a rank-" << index.getShape().size() << " buffer";
  if ((src.getSpace() == Space::GM) == (dst.getSpace() == Space::GM) || getTranspose())
    return emitOpError("an indexed copy moves between GM and an on-chip buffer, untransposed");
  auto gm = src.getSpace() == Space::GM ? src : dst;
  // I64Attr reads back unsigned: a negative index_dim is a huge one here.
  if (!getIndexDim() || *getIndexDim() >= gm.getShape().size())
    return emitOpError() << "index_dim must name a dimension of the GM side (rank "
                         << gm.getShape().size() << ")";
  return success();
}

LogicalResult MmadOp::verify() {
  auto a = cast<BufType>(getA().getType()), b = cast<BufType>(getB().getType()),
       c = cast<BufType>(getC().getType());
  if (a.getSpace() != Space::L0A || b.getSpace() != Space::L0B || c.getSpace() != Space::L0C)
    return emitOpError("reads l0a and l0b and accumulates into l0c");
  if (a.getElementType() != b.getElementType())
    return emitOpError("operands must share an element type");
  if (a.getCols() != b.getRows() || a.getRows() != c.getRows() || b.getCols() != c.getCols())
    return emitOpError() << "shapes do not chain: a " << a.getRows() << "x" << a.getCols()
                         << ", b " << b.getRows() << "x" << b.getCols() << ", c " << c.getRows()
                         << "x" << c.getCols();
  return success();
}

//===----------------------------------------------------------------------===//
// Vector
//===----------------------------------------------------------------------===//

static LogicalResult verifyUb(Operation *op, ArrayRef<Value> values) {
  for (Value v : values)
    if (cast<BufType>(v.getType()).getSpace() != Space::UB)
      return op->emitOpError("operates on ub tiles");
  return success();
}

#define VERIFY_UB(Op, ...)                                                                        \
  LogicalResult Op::verify() { return verifyUb(*this, {__VA_ARGS__}); }
VERIFY_UB(VAddOp, getLhs(), getRhs(), getDst())
VERIFY_UB(VSubOp, getLhs(), getRhs(), getDst())
VERIFY_UB(VMulOp, getLhs(), getRhs(), getDst())
VERIFY_UB(VDivOp, getLhs(), getRhs(), getDst())
VERIFY_UB(VMaxOp, getLhs(), getRhs(), getDst())
VERIFY_UB(VExpOp, getSrc(), getDst())
VERIFY_UB(VSqrtOp, getSrc(), getDst())
VERIFY_UB(VRecOp, getSrc(), getDst())
VERIFY_UB(VSinOp, getSrc(), getDst())
VERIFY_UB(VCosOp, getSrc(), getDst())
VERIFY_UB(VLnOp, getSrc(), getDst())
VERIFY_UB(VAddsOp, getSrc(), getDst())
VERIFY_UB(VMulsOp, getSrc(), getDst())
VERIFY_UB(VDupOp, getDst())
#undef VERIFY_UB

LogicalResult VCastOp::verify() {
  auto s = cast<BufType>(getSrc().getType()), d = cast<BufType>(getDst().getType());
  if (failed(verifyUb(*this, {getSrc(), getDst()})))
    return failure();
  if (s.getShape() != d.getShape())
    return emitOpError("source and destination shapes differ");
  return success();
}

LogicalResult VReduceOp::verify() {
  auto s = cast<BufType>(getSrc().getType()), d = cast<BufType>(getDst().getType());
  if (failed(verifyUb(*this, {getSrc(), getDst()})))
    return failure();
  if (d.getRows() != s.getRows() || d.getCols() != 1 || d.getElementType() != s.getElementType())
    return emitOpError("reduces a [r, c] tile into a [r, 1] tile of its element type");
  return success();
}

LogicalResult VBrcbOp::verify() {
  auto s = cast<BufType>(getSrc().getType()), d = cast<BufType>(getDst().getType());
  if (failed(verifyUb(*this, {getSrc(), getDst()})))
    return failure();
  if (s.getRows() != d.getRows() || s.getCols() != 1 || d.getElementType() != s.getElementType())
    return emitOpError("broadcasts a [r, 1] tile into a [r, c] tile of its element type");
  return success();
}

LogicalResult VTransposeOp::verify() {
  auto s = cast<BufType>(getSrc().getType()), d = cast<BufType>(getDst().getType());
  if (failed(verifyUb(*this, {getSrc(), getDst()})))
    return failure();
  if (s.getRows() != d.getCols() || s.getCols() != d.getRows() ||
      d.getElementType() != s.getElementType())
    return emitOpError("transposes a [r, c] tile into a [c, r] tile of its element type");
  return success();
}

LogicalResult VGatherOp::verify() {
  auto s = cast<BufType>(getSrc().getType()), x = cast<BufType>(getIndex().getType()),
       d = cast<BufType>(getDst().getType());
  if (failed(verifyUb(*this, {getSrc(), getIndex(), getDst()})))
    return failure();
  if (s.getRows() != d.getRows() || x.getRows() != 1 || x.getCols() != d.getCols() ||
      d.getElementType() != s.getElementType())
    return emitOpError("gathers [r, c] from a [r, c'] tile of its element type by a [1, c] "
                       "index row");
  return success();
}

//===----------------------------------------------------------------------===//
// Synchronisation
//===----------------------------------------------------------------------===//

static LogicalResult verifyFlag(Operation *op, Pipe src, Pipe dst) {
  if (src == dst)
    return op->emitOpError("orders two different pipes; use ascend.barrier within one pipe");
  return success();
}
LogicalResult SetFlagOp::verify() { return verifyFlag(*this, getSrcPipe(), getDstPipe()); }
LogicalResult WaitFlagOp::verify() { return verifyFlag(*this, getSrcPipe(), getDstPipe()); }

LogicalResult CrossSetOp::verify() {
  if (getPipe() == Pipe::S)
    return emitOpError("follows a data pipe; the scalar pipe is not allowed (S23)");
  return success();
}

LogicalResult BarrierOp::verify() {
  if (getPipe() == Pipe::S)
    return emitOpError("on the scalar pipe is a hardware error (S55); scalar order is kept");
  return success();
}

//===----------------------------------------------------------------------===//
// Kernel and launch
//===----------------------------------------------------------------------===//

LogicalResult KernelOp::verify() {
  Block &entry = getBody().front();
  if (entry.getNumArguments() < getNumIndexArgs() ||
      llvm::any_of(entry.getArguments().take_front(getNumIndexArgs()),
                   [](BlockArgument a) { return !a.getType().isIndex(); }))
    return emitOpError(getCore() == CoreKind::Mix
                           ? "entry block of a mix kernel takes the block index, then the core "
                             "within the block"
                           : "entry block takes the block index first");
  for (BlockArgument arg : getTensorArgs()) {
    auto buf = dyn_cast<BufType>(arg.getType());
    if (!buf || buf.getSpace() != Space::GM)
      return emitOpError("takes GM buffers after the block index");
  }
  if (getBlockDimAttr().getInt() < 1)
    return emitOpError("needs block_dim >= 1");
  if (std::optional<ArrayRef<int64_t>> ws = getWorkspace())
    for (int64_t i : *ws)
      if (i < 0 || i >= (int64_t)getTensorArgs().size())
        return emitOpError() << "workspace index " << i << " is not a GM argument";

  llvm::Expected<std::shared_ptr<const TargetDescription>> loaded =
      TargetDescription::load(getTarget());
  if (!loaded)
    return emitOpError() << llvm::toString(loaded.takeError());
  const TargetDescription &t = **loaded;
  if (getBlockDimAttr().getInt() > t.cubeCores * (getCore() == CoreKind::AIV ? t.vectorCoresPerCube : 1))
    emitWarning() << "block_dim " << getBlockDim() << " exceeds the " << t.name
                  << "'s cores; blocks run in waves";
  if (t.separated == (getCore() == CoreKind::Coupled))
    return emitOpError() << "core kind " << stringifyCoreKind(getCore()) << " does not exist on "
                         << t.name << " (" << (t.separated ? "separated" : "coupled")
                         << " AI cores)";

  // Capacity and alignment of every allocation, and no overlap in a space
  // between allocations that can be live at once.
  struct Range {
    int64_t begin, end;
    AllocOp op;
  };
  std::array<SmallVector<Range>, kNumSpaces> ranges;
  auto checkOp = [&](Operation *op) -> LogicalResult {
    if (auto alloc = dyn_cast<AllocOp>(op)) {
      auto type = cast<BufType>(alloc.getType());
      const BufferSpec &spec = t.buffer(type.getSpace());
      int64_t offset = alloc.getOffsetAttr().getInt();
      int64_t end = offset + alloc.getSlotsAttr().getInt() * type.getBytes();
      if (offset % spec.align)
        return alloc.emitOpError() << "offset " << offset << " is not aligned to the "
                                   << spec.align << " bytes " << stringifySpace(type.getSpace())
                                   << " requires on " << t.name;
      if (type.getBytes() % spec.align && alloc.getSlots() > 1)
        return alloc.emitOpError() << "slot size " << type.getBytes() << " is not a multiple of "
                                   << stringifySpace(type.getSpace()) << " alignment "
                                   << spec.align;
      if (end > spec.bytes)
        return alloc.emitOpError() << "needs bytes [" << offset << ", " << end
                                   << ") of " << stringifySpace(type.getSpace()) << ", which has "
                                   << spec.bytes << " on " << t.name;
      ranges[static_cast<int>(type.getSpace())].push_back({offset, end, alloc});
    } else if (auto copy = dyn_cast<CopyOp>(op)) {
      Space s = cast<BufType>(copy.getSrc().getType()).getSpace();
      Space d = cast<BufType>(copy.getDst().getType()).getSpace();
      const PathSpec *path = t.findPath(s, d);
      if (!path)
        return copy.emitOpError() << "path " << stringifySpace(s) << " -> " << stringifySpace(d)
                                  << " does not exist on " << t.name;
      if (path->pipe != copy.getPipe())
        return copy.emitOpError() << "path " << stringifySpace(s) << " -> " << stringifySpace(d)
                                  << " runs on " << stringifyPipe(path->pipe) << " on " << t.name
                                  << ", not " << stringifyPipe(copy.getPipe());
    } else if (auto mmad = dyn_cast<MmadOp>(op)) {
      Type e = cast<BufType>(mmad.getA().getType()).getElementType();
      DType dt = e.isF32() ? DType::F32 : e.isF16() ? DType::F16 : DType::BF16;
      if (!t.cubeMacsPerCycle(dt))
        return mmad.emitOpError() << "the " << t.name << " Cube has no " << dtypeName(dt)
                                  << " mode";
    }
    if (auto piped = dyn_cast<PipeOpInterface>(op)) {
      Pipe p = piped.getExecutingPipe();
      auto check = [&](Pipe q) -> LogicalResult {
        if (!t.pipeAvailable(getCore(), q))
          return op->emitOpError() << "uses pipe " << stringifyPipe(q) << ", which a "
                                   << stringifyCoreKind(getCore()) << " core of " << t.name
                                   << " does not have";
        return success();
      };
      if (failed(check(p)))
        return failure();
      Value event;
      if (auto set = dyn_cast<SetFlagOp>(op)) {
        event = set.getEvent();
        if (failed(check(set.getDstPipe())))
          return failure();
      } else if (auto wait = dyn_cast<WaitFlagOp>(op)) {
        event = wait.getEvent();
        if (failed(check(wait.getSrcPipe())))
          return failure();
      }
      if (event)
        if (std::optional<int64_t> id = constantIndex(event);
            id && (*id < 0 || *id >= t.eventsPerPipePair))
          return op->emitOpError() << "event " << *id << " is outside [0, "
                                   << t.eventsPerPipePair << ") on " << t.name;
      Value flag = isa<CrossSetOp>(op)    ? cast<CrossSetOp>(op).getFlag()
                   : isa<CrossWaitOp>(op) ? cast<CrossWaitOp>(op).getFlag()
                                          : Value();
      if (flag && getCore() != CoreKind::Mix)
        return op->emitOpError("synchronises the cores of a mix kernel's block");
      if (flag)
        if (std::optional<int64_t> id = constantIndex(flag);
            id && (*id < 0 || *id >= t.crossCoreFlags))
          return op->emitOpError() << "cross-core flag " << *id << " is outside [0, "
                                   << t.crossCoreFlags << ") on " << t.name;
    }
    return success();
  };
  if (walk([&](Operation *op) {
        return failed(checkOp(op)) ? WalkResult::interrupt() : WalkResult::advance();
      }).wasInterrupted())
    return failure();
  // Allocations in disjoint regions (neither region holds the other, e.g.
  // the bodies of two loops one after the other) are never usable at once:
  // they may share bytes, and the simulator orders their accesses by address.
  auto nested = [](AllocOp a, AllocOp b) {
    Region *ra = a->getParentRegion(), *rb = b->getParentRegion();
    return ra->isAncestor(rb) || rb->isAncestor(ra);
  };
  for (auto &list : ranges) {
    llvm::sort(list, [](const Range &a, const Range &b) { return a.begin < b.begin; });
    for (size_t i = 1; i < list.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (list[i].begin < list[j].end && nested(list[i].op, list[j].op)) {
          InFlightDiagnostic d = list[i].op.emitOpError()
                                 << "overlaps another allocation of its space (bytes ["
                                 << list[j].begin << ", " << list[j].end << "))";
          d.attachNote(list[j].op.getLoc()) << "the other allocation";
          return d;
        }
  }
  return success();
}

LogicalResult LaunchOp::verifySymbolUses(SymbolTableCollection &symbols) {
  auto kernel = symbols.lookupNearestSymbolFrom<KernelOp>(*this, getKernelAttr());
  if (!kernel)
    return emitOpError() << "'" << getKernel() << "' is not an ascend.kernel";
  // The kernel's workspace (its scratch GM) is the launch's own.
  SmallVector<BlockArgument> args;
  ArrayRef<int64_t> workspace = kernel.getWorkspace().value_or(ArrayRef<int64_t>());
  for (auto [i, arg] : llvm::enumerate(kernel.getTensorArgs()))
    if (!llvm::is_contained(workspace, (int64_t)i))
      args.push_back(arg);
  size_t expected = args.size();
  if (getInputs().size() + getResults().size() != expected)
    return emitOpError() << "passes " << getInputs().size() << " inputs and "
                         << getResults().size() << " results to a kernel of " << expected
                         << " GM tensors";
  SmallVector<Type> types(getInputs().getTypes());
  llvm::append_range(types, getResults().getTypes());
  for (auto [i, type] : llvm::enumerate(types)) {
    auto t = cast<RankedTensorType>(type);
    auto b = cast<BufType>(args[i].getType());
    int64_t elements = 1;
    for (int64_t d : b.getShape())
      elements *= d;
    if (!t.hasStaticShape() || t.getNumElements() != elements)
      return emitOpError() << "tensor " << i << " has shape " << t << " but the kernel's GM "
                           << "argument is " << b;
  }
  return success();
}

#define GET_OP_CLASSES
#include "attnedit/Ascend/AscendOps.cpp.inc"
