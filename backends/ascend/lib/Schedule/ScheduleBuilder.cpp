//===- ScheduleBuilder.cpp - expand a kernel per block index --------------===//
//
// A small interpreter for the integer part of a kernel body (arith on index
// and i1, scf.for without iter_args, scf.if without results); everything it
// does not know is an error naming the op, never a guess.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/ScheduleBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::attnedit::ascend;

llvm::StringRef mlir::attnedit::ascend::vectorOpName(VectorOp op) {
  static const char *names[] = {"vadd", "vsub", "vmul",  "vdiv",       "vmax",
                                "vexp", "vsqrt", "vrec", "vadds",      "vmuls",
                                "vdup", "vcast", "vreduce sum", "vreduce max", "vbrcb",
                                "vsin", "vcos", "vgather", "vln", "vtranspose"};
  return names[static_cast<int>(op)];
}

namespace {

DType dtypeOf(Type t) { return t.isF32() ? DType::F32 : t.isF16() ? DType::F16 : DType::BF16; }

std::string describe(Operation *op) {
  std::string s;
  llvm::raw_string_ostream os(s);
  if (auto loc = dyn_cast<FileLineColLoc>(op->getLoc()))
    os << loc.getFilename().getValue() << ":" << loc.getLine() << ":" << loc.getColumn() << ": ";
  os << op->getName().getStringRef();
  return s;
}

class Expander {
public:
  Expander(KernelOp kernel, Schedule &schedule) : kernel(kernel), schedule(schedule) {}

  /// The program of core `sub` of block `block` (for a mix kernel: 0 the
  /// AIC, 1.. its AIVs).
  llvm::Error expandBlock(int64_t block, int64_t sub) {
    ints.clear();
    bufs.clear();
    program = &schedule.cores.emplace_back();
    program->block = block;
    program->kind = kernel.getCore();
    Block &entry = kernel.getBody().front();
    ints[entry.getArgument(0)] = block;
    if (kernel.getCore() == CoreKind::Mix) {
      ints[entry.getArgument(1)] = sub;
      program->kind = sub == 0 ? CoreKind::AIC : CoreKind::AIV;
      program->sub = sub == 0 ? 0 : sub - 1;
    }
    for (auto [i, arg] : llvm::enumerate(kernel.getTensorArgs())) {
      auto type = cast<BufType>(arg.getType());
      TileRef ref;
      ref.space = Space::GM;
      ref.gmArg = i;
      ref.shape.assign(type.getShape().begin(), type.getShape().end());
      ref.dtype = dtypeOf(type.getElementType());
      bufs[arg] = ref;
    }
    return run(entry);
  }

private:
  llvm::Error fail(Operation *op, const llvm::Twine &msg) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   describe(op) + ": " + msg.str());
  }

  llvm::Expected<int64_t> intOf(Operation *op, Value v) {
    auto it = ints.find(v);
    if (it == ints.end())
      return fail(op, "operand is not an integer the schedule builder computed");
    return it->second;
  }

  llvm::Error run(Block &block) {
    for (Operation &op : block) {
      if (llvm::Error e = step(&op))
        return e;
      if (emitted > kMaxInstrs)
        return fail(&op, "the kernel expands to more than " + llvm::Twine(kMaxInstrs) +
                             " instructions, which the simulator and the cost model hold whole "
                             "(about a kilobyte each): give it a smaller shape (fewer tokens)");
    }
    return llvm::Error::success();
  }

  llvm::Error window(Operation *op, Value buf, OperandRange offsets, Window &w) {
    auto it = bufs.find(buf);
    if (it == bufs.end())
      return fail(op, "buffer operand is not an alloc, slot or kernel argument");
    w.tile = it->second;
    w.offsets.clear();
    for (Value o : offsets) {
      llvm::Expected<int64_t> v = intOf(op, o);
      if (!v)
        return v.takeError();
      w.offsets.push_back(*v);
    }
    return llvm::Error::success();
  }

  llvm::Error whole(Operation *op, Value buf, Window &w) {
    auto it = bufs.find(buf);
    if (it == bufs.end())
      return fail(op, "buffer operand is not an alloc, slot or kernel argument");
    w.tile = it->second;
    w.offsets.assign(w.tile.shape.size(), 0);
    return llvm::Error::success();
  }

  Instr &emit(Operation *op, InstrKind kind, Pipe pipe) {
    ++emitted;
    Instr &i = program->instrs.emplace_back();
    i.kind = kind;
    i.pipe = pipe;
    auto [it, inserted] = whereIds.try_emplace(op, 0);
    if (inserted)
      it->second = schedule.addLocation(describe(op));
    i.where = it->second;
    i.origin = op;
    return i;
  }

  llvm::Error vector(Operation *op, VectorOp vop, Value a, Value b, Value dst, double scalar = 0) {
    Instr &i = emit(op, InstrKind::Vector, Pipe::V);
    i.vop = vop;
    i.scalar = scalar;
    if (a)
      if (llvm::Error e = whole(op, a, i.src0))
        return e;
    if (b)
      if (llvm::Error e = whole(op, b, i.src1))
        return e;
    return whole(op, dst, i.dst);
  }

  llvm::Error binary(Operation *op, llvm::function_ref<int64_t(int64_t, int64_t)> f) {
    llvm::Expected<int64_t> a = intOf(op, op->getOperand(0));
    if (!a)
      return a.takeError();
    llvm::Expected<int64_t> b = intOf(op, op->getOperand(1));
    if (!b)
      return b.takeError();
    ints[op->getResult(0)] = f(*a, *b);
    return llvm::Error::success();
  }

  llvm::Error step(Operation *op) {
    auto divide = [&](bool rem) {
      return binary(op, [rem](int64_t a, int64_t b) { return b == 0 ? 0 : rem ? a % b : a / b; });
    };
    return llvm::TypeSwitch<Operation *, llvm::Error>(op)
        .Case([&](arith::ConstantOp c) -> llvm::Error {
          auto attr = dyn_cast<IntegerAttr>(c.getValue());
          if (!attr)
            return fail(op, "only integer constants are interpreted");
          ints[c.getResult()] = c.getType().isInteger(1) ? attr.getValue().getZExtValue()
                                                          : attr.getValue().getSExtValue();
          return llvm::Error::success();
        })
        .Case([&](arith::AddIOp) { return binary(op, std::plus<int64_t>()); })
        .Case([&](arith::SubIOp) { return binary(op, std::minus<int64_t>()); })
        .Case([&](arith::MulIOp) { return binary(op, std::multiplies<int64_t>()); })
        .Case<arith::DivUIOp, arith::DivSIOp>([&](auto) { return divide(false); })
        .Case<arith::RemUIOp, arith::RemSIOp>([&](auto) { return divide(true); })
        .Case<arith::MinSIOp, arith::MinUIOp>(
            [&](auto) { return binary(op, [](int64_t a, int64_t b) { return std::min(a, b); }); })
        .Case<arith::MaxSIOp, arith::MaxUIOp>(
            [&](auto) { return binary(op, [](int64_t a, int64_t b) { return std::max(a, b); }); })
        .Case([&](arith::AndIOp) { return binary(op, [](int64_t a, int64_t b) { return a & b; }); })
        .Case([&](arith::OrIOp) { return binary(op, [](int64_t a, int64_t b) { return a | b; }); })
        .Case([&](arith::CmpIOp cmp) {
          return binary(op, [p = cmp.getPredicate()](int64_t a, int64_t b) -> int64_t {
            switch (p) {
            case arith::CmpIPredicate::eq:
              return a == b;
            case arith::CmpIPredicate::ne:
              return a != b;
            case arith::CmpIPredicate::slt:
            case arith::CmpIPredicate::ult:
              return a < b;
            case arith::CmpIPredicate::sle:
            case arith::CmpIPredicate::ule:
              return a <= b;
            case arith::CmpIPredicate::sgt:
            case arith::CmpIPredicate::ugt:
              return a > b;
            case arith::CmpIPredicate::sge:
            case arith::CmpIPredicate::uge:
              return a >= b;
            }
            return 0;
          });
        })
        .Case([&](arith::SelectOp sel) -> llvm::Error {
          llvm::Expected<int64_t> c = intOf(op, sel.getCondition());
          if (!c)
            return c.takeError();
          llvm::Expected<int64_t> v = intOf(op, *c ? sel.getTrueValue() : sel.getFalseValue());
          if (!v)
            return v.takeError();
          ints[sel.getResult()] = *v;
          return llvm::Error::success();
        })
        .Case([&](scf::ForOp loop) -> llvm::Error {
          if (loop.getNumResults())
            return fail(op, "loops with iter_args are not interpreted");
          llvm::Expected<int64_t> lb = intOf(op, loop.getLowerBound());
          llvm::Expected<int64_t> ub = intOf(op, loop.getUpperBound());
          llvm::Expected<int64_t> st = intOf(op, loop.getStep());
          if (!lb || !ub || !st) {
            llvm::consumeError(lb.takeError());
            llvm::consumeError(ub.takeError());
            llvm::consumeError(st.takeError());
            return fail(op, "loop bounds are not computed integers");
          }
          if (*st <= 0)
            return fail(op, "loop step must be positive");
          for (int64_t i = *lb; i < *ub; i += *st) {
            ints[loop.getInductionVar()] = i;
            if (llvm::Error e = run(*loop.getBody()))
              return e;
          }
          return llvm::Error::success();
        })
        .Case([&](scf::IfOp branch) -> llvm::Error {
          if (branch.getNumResults())
            return fail(op, "scf.if with results is not interpreted");
          llvm::Expected<int64_t> c = intOf(op, branch.getCondition());
          if (!c)
            return c.takeError();
          Region &r = *c ? branch.getThenRegion() : branch.getElseRegion();
          return r.empty() ? llvm::Error::success() : run(r.front());
        })
        .Case([&](scf::YieldOp) { return llvm::Error::success(); })
        .Case([&](AllocOp alloc) {
          auto type = cast<BufType>(alloc.getType());
          TileRef ref;
          ref.space = type.getSpace();
          ref.offset = alloc.getOffsetAttr().getInt();
          ref.shape.assign(type.getShape().begin(), type.getShape().end());
          ref.dtype = dtypeOf(type.getElementType());
          ref.layout = type.getLayout();
          bufs[alloc.getResult()] = ref;
          return llvm::Error::success();
        })
        .Case([&](SlotOp slot) -> llvm::Error {
          auto alloc = slot.getBuffer().getDefiningOp<AllocOp>();
          llvm::Expected<int64_t> i = intOf(op, slot.getIndex());
          if (!i)
            return i.takeError();
          TileRef ref = bufs[alloc.getResult()];
          int64_t slots = alloc.getSlotsAttr().getInt();
          ref.offset += ((*i % slots + slots) % slots) * ref.bytes();
          bufs[slot.getResult()] = ref;
          return llvm::Error::success();
        })
        .Case([&](CopyOp copy) -> llvm::Error {
          Instr &i = emit(op, InstrKind::Copy, copy.getPipe());
          i.rows = copy.getSizes()[0];
          i.cols = copy.getSizes()[1];
          i.transpose = copy.getTranspose();
          if (llvm::Error e = window(op, copy.getSrc(), copy.getSrcOffsets(), i.src0))
            return e;
          if (copy.getIndex()) {
            i.indexDim = *copy.getIndexDim();
            if (llvm::Error e = window(op, copy.getIndex(), copy.getIndexOffsets(), i.index))
              return e;
          }
          return window(op, copy.getDst(), copy.getDstOffsets(), i.dst);
        })
        .Case([&](MmadOp mmad) -> llvm::Error {
          Instr &i = emit(op, InstrKind::Mmad, Pipe::M);
          llvm::Expected<int64_t> init = intOf(op, mmad.getInit());
          if (!init)
            return init.takeError();
          i.init = *init;
          if (llvm::Error e = whole(op, mmad.getA(), i.src0))
            return e;
          if (llvm::Error e = whole(op, mmad.getB(), i.src1))
            return e;
          return whole(op, mmad.getC(), i.dst);
        })
        .Case([&](VAddOp v) { return vector(op, VectorOp::Add, v.getLhs(), v.getRhs(), v.getDst()); })
        .Case([&](VSubOp v) { return vector(op, VectorOp::Sub, v.getLhs(), v.getRhs(), v.getDst()); })
        .Case([&](VMulOp v) { return vector(op, VectorOp::Mul, v.getLhs(), v.getRhs(), v.getDst()); })
        .Case([&](VDivOp v) { return vector(op, VectorOp::Div, v.getLhs(), v.getRhs(), v.getDst()); })
        .Case([&](VMaxOp v) { return vector(op, VectorOp::Max, v.getLhs(), v.getRhs(), v.getDst()); })
        .Case([&](VExpOp v) { return vector(op, VectorOp::Exp, v.getSrc(), {}, v.getDst()); })
        .Case([&](VSqrtOp v) { return vector(op, VectorOp::Sqrt, v.getSrc(), {}, v.getDst()); })
        .Case([&](VRecOp v) { return vector(op, VectorOp::Rec, v.getSrc(), {}, v.getDst()); })
        .Case([&](VSinOp v) { return vector(op, VectorOp::Sin, v.getSrc(), {}, v.getDst()); })
        .Case([&](VCosOp v) { return vector(op, VectorOp::Cos, v.getSrc(), {}, v.getDst()); })
        .Case([&](VLnOp v) { return vector(op, VectorOp::Ln, v.getSrc(), {}, v.getDst()); })
        .Case([&](VTransposeOp v) {
          return vector(op, VectorOp::Transpose, v.getSrc(), {}, v.getDst());
        })
        .Case([&](VAddsOp v) {
          return vector(op, VectorOp::Adds, v.getSrc(), {}, v.getDst(), v.getScalar().convertToDouble());
        })
        .Case([&](VMulsOp v) {
          return vector(op, VectorOp::Muls, v.getSrc(), {}, v.getDst(), v.getScalar().convertToDouble());
        })
        .Case([&](VDupOp v) {
          return vector(op, VectorOp::Dup, {}, {}, v.getDst(), v.getScalar().convertToDouble());
        })
        .Case([&](VCastOp v) { return vector(op, VectorOp::Cast, v.getSrc(), {}, v.getDst()); })
        .Case([&](VReduceOp v) {
          return vector(op, v.getKind() == ReduceKind::Sum ? VectorOp::ReduceSum : VectorOp::ReduceMax,
                        v.getSrc(), {}, v.getDst());
        })
        .Case([&](VBrcbOp v) { return vector(op, VectorOp::Brcb, v.getSrc(), {}, v.getDst()); })
        .Case([&](VGatherOp v) {
          return vector(op, VectorOp::Gather, v.getSrc(), v.getIndex(), v.getDst());
        })
        .Case<SetFlagOp, WaitFlagOp>([&](auto flag) -> llvm::Error {
          bool set = isa<SetFlagOp>(op);
          Instr &i = emit(op, set ? InstrKind::SetFlag : InstrKind::WaitFlag,
                          set ? flag.getSrcPipe() : flag.getDstPipe());
          i.flagSrc = flag.getSrcPipe();
          i.flagDst = flag.getDstPipe();
          llvm::Expected<int64_t> ev = intOf(op, flag.getEvent());
          if (!ev)
            return ev.takeError();
          i.event = *ev;
          return llvm::Error::success();
        })
        .Case([&](BarrierOp b) {
          emit(op, InstrKind::Barrier, b.getPipe());
          return llvm::Error::success();
        })
        .Case([&](SyncAllOp) {
          emit(op, InstrKind::SyncAll, Pipe::S);
          return llvm::Error::success();
        })
        .Case<CrossSetOp, CrossWaitOp>([&](auto x) -> llvm::Error {
          bool set = isa<CrossSetOp>(op);
          Instr &i = emit(op, set ? InstrKind::CrossSet : InstrKind::CrossWait,
                          cast<PipeOpInterface>(op).getExecutingPipe());
          llvm::Expected<int64_t> id = intOf(op, x.getFlag());
          if (!id)
            return id.takeError();
          i.event = *id;
          return llvm::Error::success();
        })
        .Default([&](Operation *) {
          return fail(op, "is not an op the schedule builder interprets");
        });
  }

  KernelOp kernel;
  Schedule &schedule;
  CoreProgram *program = nullptr;
  // A bound on the whole schedule (every block's programs), so a shape
  // past what fits in memory is an error naming the op, not bad_alloc.
  static constexpr int64_t kMaxInstrs = int64_t(1) << 20;
  int64_t emitted = 0;
  llvm::DenseMap<Value, int64_t> ints;
  llvm::DenseMap<Value, TileRef> bufs;
  llvm::DenseMap<Operation *, uint32_t> whereIds;
};

} // namespace

llvm::Expected<Schedule> mlir::attnedit::ascend::buildSchedule(KernelOp kernel,
                                                               llvm::ArrayRef<int64_t> blocks) {
  llvm::Expected<std::shared_ptr<const TargetDescription>> target =
      TargetDescription::load(kernel.getTarget());
  if (!target)
    return target.takeError();
  Schedule s;
  s.kernel = kernel.getSymName().str();
  s.core = kernel.getCore();
  s.blockDim = kernel.getBlockDimAttr().getInt();
  s.target = *target;
  s.targetRef = kernel.getTarget().str();
  for (BlockArgument arg : kernel.getTensorArgs()) {
    auto type = cast<BufType>(arg.getType());
    s.gm.push_back({std::vector<int64_t>(type.getShape().begin(), type.getShape().end()),
                    dtypeOf(type.getElementType())});
  }
  if (std::optional<llvm::ArrayRef<int64_t>> ws = kernel.getWorkspace())
    for (int64_t i : *ws)
      s.gm[i].workspace = true;
  // The device holds every tensor a kernel reads or writes at once.
  int64_t gmBytes = 0, gmCapacity = s.target->buffer(Space::GM).bytes;
  for (BlockArgument arg : kernel.getTensorArgs()) {
    int64_t bytes = cast<BufType>(arg.getType()).getBytes();
    gmBytes = bytes > gmCapacity - gmBytes ? gmCapacity + 1 : gmBytes + bytes;
  }
  if (gmBytes > gmCapacity)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        describe(kernel) + ": the kernel's tensors need more than the " +
            llvm::Twine(gmCapacity) + " bytes of GM (global memory) of target '" +
            kernel.getTarget() + "': give it a smaller shape (fewer tokens)");
  std::vector<int64_t> all;
  if (blocks.empty())
    for (int64_t b = 0; b < s.blockDim; ++b)
      all.push_back(b);
  Expander expander(kernel, s);
  int64_t perBlock = s.core == CoreKind::Mix ? 1 + s.target->vectorCoresPerCube : 1;
  s.cores.reserve(perBlock * (blocks.empty() ? all.size() : blocks.size()));
  for (int64_t b : blocks.empty() ? llvm::ArrayRef<int64_t>(all) : blocks)
    for (int64_t sub = 0; sub < perBlock; ++sub)
      if (llvm::Error e = expander.expandBlock(b, sub))
        return std::move(e);
  return s;
}
