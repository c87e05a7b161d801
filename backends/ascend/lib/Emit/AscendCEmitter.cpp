//===- AscendCEmitter.cpp - ascend.kernel -> Ascend C-like source ---------===//
//
// A structural printer: every op of the kernel body becomes one statement,
// loops stay loops, index math stays C expressions, so the source can be
// read against the IR line by line. Unknown ops are an error naming them.
//
// A vector-core kernel of the CopyIn / Compute / CopyOut shape (one tile
// loop whose multi-slot UB buffers each pass from one stage to the next, its
// flags only the ones those hand-overs need) is printed as the class a CANN
// sample writes (research §4.1, S62): a TPipe, one TQue per such buffer
// with the buffer's slots as its depth, AllocTensor / EnQue in the producing
// stage, DeQue / FreeTensor in the consuming one, TBuf for the single-slot
// scratch; the queues then stand for the schedule's flags between the
// stages. Every other kernel keeps the explicit SetFlag / WaitFlag form.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/AscendCEmitter.h"
#include "attnedit/Ascend/TileLayout.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FormatVariadic.h"

#include <cctype>
#include <cstdio>

using namespace mlir;
using namespace mlir::attnedit::ascend;

namespace {

std::string cType(Type t) {
  return t.isF32() ? "float" : t.isF16() ? "half" : "bfloat16_t";
}

/// TPosition of each space on A2 (research §2.2).
const char *position(Space s) {
  switch (s) {
  case Space::GM:
    return "GM";
  case Space::L1:
    return "A1";
  case Space::L0A:
    return "A2";
  case Space::L0B:
    return "B2";
  case Space::L0C:
    return "CO1";
  case Space::UB:
    return "VECCALC";
  }
  return "?";
}

std::string pipeMacro(Pipe p) { return "PIPE_" + stringifyPipe(p).upper(); }
std::string eventName(Pipe s, Pipe d) {
  return "HardEvent::" + stringifyPipe(s).upper() + "_" + stringifyPipe(d).upper();
}

class Emitter {
public:
  Emitter(KernelOp kernel, llvm::raw_ostream &os) : kernel(kernel), os(os) {}

  LogicalResult run() {
    header();
    if (std::optional<QueuePlan> plan = planQueues())
      return queueForm(*plan);
    Block &entry = kernel.getBody().front();
    os << "extern \"C\" __global__ __aicore__ void " << kernel.getSymName() << "(";
    for (auto [i, arg] : llvm::enumerate(kernel.getTensorArgs()))
      os << (i ? ", " : "") << "GM_ADDR gm" << i << "_addr";
    os << ") {\n";
    depth = 1;
    const char *type = kernel.getCore() == CoreKind::AIC   ? "KERNEL_TYPE_AIC_ONLY"
                       : kernel.getCore() == CoreKind::AIV ? "KERNEL_TYPE_AIV_ONLY"
                       : kernel.getCore() == CoreKind::Mix ? "KERNEL_TYPE_MIX_AIC_1_2"
                                                           : "KERNEL_TYPE_AICORE";
    indent() << "KERNEL_TASK_TYPE_DEFAULT(" << type << ");\n";
    for (auto [i, arg] : llvm::enumerate(kernel.getTensorArgs())) {
      auto b = cast<BufType>(arg.getType());
      std::string name = "gm" + std::to_string(i);
      names[arg] = name;
      indent() << "GlobalTensor<" << cType(b.getElementType()) << "> " << name << "; " << name
               << ".SetGlobalBuffer((__gm__ " << cType(b.getElementType()) << " *)" << name
               << "_addr); // " << shape(b) << "\n";
    }
    names[entry.getArgument(0)] = "block";
    // In a mix kernel each AIV has its own block index: two per AI core.
    indent() << (kernel.getCore() == CoreKind::Mix
                     ? "const int64_t block = ASCEND_IS_AIV ? GetBlockIdx() / 2 : GetBlockIdx();\n"
                     : "const int64_t block = GetBlockIdx();\n");
    if (kernel.getCore() == CoreKind::Mix) {
      // The body's core index: 0 on the AIC, 1 + GetSubBlockIdx() on an AIV.
      names[entry.getArgument(1)] = "core";
      indent() << "const int64_t core = ASCEND_IS_AIC ? 0 : 1 + GetSubBlockIdx();\n";
    }
    for (Operation &op : entry)
      if (failed(statement(&op)))
        return failure();
    os << "}\n";
    return success();
  }

private:
  enum Stage { CopyIn, Compute, CopyOut, NumStages };
  static constexpr const char *stageNames[NumStages] = {"CopyIn", "Compute", "CopyOut"};

  /// How a CopyIn / Compute / CopyOut kernel maps onto queues.
  struct QueuePlan {
    scf::ForOp loop;
    /// Per multi-slot buffer: the stage that fills it and the one that
    /// drains it, and the slot op naming the iteration's slot.
    struct Queue {
      AllocOp alloc;
      SlotOp slot;
      Stage from, to;
    };
    SmallVector<Queue> queues;
    SmallVector<AllocOp> tbufs; // UB buffers only one stage (or the prologue) touches
    llvm::DenseMap<Operation *, Stage> stageOf;
    llvm::DenseSet<Operation *> dropped; // flags the queues stand for
  };

  static bool stagePipe(Pipe p) { return p == Pipe::MTE2 || p == Pipe::V || p == Pipe::MTE3; }

  /// The stage an op of the tile loop's body runs in; nullopt for index
  /// math, slots and flags, which are not stage work.
  static std::optional<Stage> stageFor(Operation *op) {
    if (auto copy = dyn_cast<CopyOp>(op))
      return copy.getPipe() == Pipe::MTE2 ? CopyIn : copy.getPipe() == Pipe::MTE3 ? CopyOut : Compute;
    return Compute;
  }

  /// The queue form applies when the kernel is a vector kernel whose entry
  /// block is a prologue, one tile loop with a flat body, and the drain; every
  /// UB buffer the loop's copies touch has slots and passes from one stage to
  /// the next; the loop's flags are only between MTE2, V and MTE3 (what the
  /// queues do); the body reads nothing the prologue computed but constants.
  std::optional<QueuePlan> planQueues() {
    if (kernel.getCore() != CoreKind::AIV)
      return std::nullopt;
    Block &entry = kernel.getBody().front();
    QueuePlan plan;
    for (Operation &op : entry) {
      if (auto loop = dyn_cast<scf::ForOp>(op)) {
        if (plan.loop)
          return std::nullopt;
        plan.loop = loop;
      } else if (isa<scf::IfOp, MmadOp, CrossSetOp, CrossWaitOp, SyncAllOp>(op)) {
        return std::nullopt;
      }
    }
    if (!plan.loop)
      return std::nullopt;
    Block &body = *plan.loop.getBody();
    llvm::DenseMap<Operation *, SmallVector<Stage>> allocStages; // alloc -> stages using it
    llvm::DenseMap<Operation *, SlotOp> slotOf;
    for (Operation &op : body) {
      if (isa<arith::ArithDialect>(op.getDialect()) || isa<scf::YieldOp>(op))
        continue;
      if (isa<scf::ForOp, scf::IfOp, MmadOp, CrossSetOp, CrossWaitOp, SyncAllOp>(op) ||
          (isa<CopyOp>(op) && cast<CopyOp>(op).getIndex()))
        return std::nullopt;
      if (auto slot = dyn_cast<SlotOp>(op)) {
        auto alloc = slot.getBuffer().getDefiningOp<AllocOp>();
        if (!alloc || slotOf.count(alloc))
          return std::nullopt; // one slot op per buffer: the queue's tensor
        slotOf[alloc] = slot;
        continue;
      }
      if (auto f = dyn_cast<SetFlagOp>(op)) {
        if (!stagePipe(f.getSrcPipe()) || !stagePipe(f.getDstPipe()))
          return std::nullopt;
        plan.dropped.insert(&op);
        continue;
      }
      if (auto f = dyn_cast<WaitFlagOp>(op)) {
        if (!stagePipe(f.getSrcPipe()) || !stagePipe(f.getDstPipe()))
          return std::nullopt;
        plan.dropped.insert(&op);
        continue;
      }
      if (auto b = dyn_cast<BarrierOp>(op)) {
        if (b.getPipe() != Pipe::V)
          return std::nullopt;
        plan.stageOf[&op] = Compute;
        continue;
      }
      Stage st = *stageFor(&op);
      plan.stageOf[&op] = st;
      for (Value v : op.getOperands()) {
        Operation *def = v.getDefiningOp();
        if (auto slot = dyn_cast_or_null<SlotOp>(def))
          def = slot.getBuffer().getDefiningOp();
        if (auto alloc = dyn_cast_or_null<AllocOp>(def)) {
          auto &list = allocStages[alloc];
          if (!llvm::is_contained(list, st))
            list.push_back(st);
        }
      }
    }
    // The body's values come from itself, the induction variable, the block
    // index, constants and the buffers (members of the class).
    for (Operation &op : body)
      for (Value v : op.getOperands()) {
        if (v == plan.loop.getInductionVar() || v == entry.getArgument(0))
          continue;
        if (auto arg = dyn_cast<BlockArgument>(v)) {
          if (arg.getOwner() == &entry)
            continue; // a GM tensor
          return std::nullopt;
        }
        Operation *def = v.getDefiningOp();
        if (def->getBlock() == &body || isa<arith::ConstantOp, AllocOp>(def))
          continue;
        return std::nullopt;
      }
    for (Operation &op : entry) {
      auto alloc = dyn_cast<AllocOp>(op);
      if (!alloc)
        continue;
      if (cast<BufType>(alloc.getType()).getSpace() != Space::UB)
        return std::nullopt;
      SmallVector<Stage> stages = allocStages.lookup(alloc);
      llvm::sort(stages);
      bool sloted = alloc.getSlotsAttr().getInt() > 1;
      if (sloted != slotOf.count(alloc))
        return std::nullopt; // a multi-slot buffer used whole, or a slot of a single one
      if (!sloted) {
        // Scratch of the Compute stage, or a tile the prologue filled.
        if (llvm::any_of(stages, [](Stage s) { return s != Compute; }))
          return std::nullopt;
        plan.tbufs.push_back(alloc);
        continue;
      }
      if (stages.size() == 1 && stages[0] == Compute) {
        plan.tbufs.push_back(alloc); // double-buffered scratch: its slot indexes it
        continue;
      }
      if (stages.size() != 2)
        return std::nullopt;
      plan.queues.push_back({alloc, slotOf[alloc], stages[0], stages[1]});
    }
    // The pre-arm sets before the loop that nothing waits before it, and
    // the drain after it, belong to the queues; flags of the prologue stay.
    bool beforeLoop = true;
    llvm::SmallVector<SetFlagOp> pending;
    for (Operation &op : entry) {
      if (&op == plan.loop.getOperation()) {
        beforeLoop = false;
        for (SetFlagOp f : pending)
          plan.dropped.insert(f);
        continue;
      }
      if (auto f = dyn_cast<SetFlagOp>(op)) {
        if (!beforeLoop || !stagePipe(f.getSrcPipe()) || !stagePipe(f.getDstPipe()))
          return std::nullopt;
        pending.push_back(f);
      } else if (auto w = dyn_cast<WaitFlagOp>(op)) {
        if (beforeLoop) {
          auto same = [&](SetFlagOp f) {
            return f.getSrcPipe() == w.getSrcPipe() && f.getDstPipe() == w.getDstPipe() &&
                   f.getEvent() == w.getEvent();
          };
          auto it = llvm::find_if(pending, same);
          if (it == pending.end())
            return std::nullopt;
          pending.erase(it);
        } else if (!stagePipe(w.getSrcPipe()) || !stagePipe(w.getDstPipe())) {
          return std::nullopt;
        } else {
          plan.dropped.insert(&op);
        }
      } else if (!beforeLoop && !isa<arith::ConstantOp>(op)) {
        return std::nullopt; // work after the loop
      }
    }
    return plan;
  }

  static std::string className(StringRef sym) {
    std::string n = "Kernel";
    bool up = true;
    for (char c : sym) {
      if (c == '_') {
        up = true;
        continue;
      }
      n += up ? static_cast<char>(std::toupper(c)) : c;
      up = false;
    }
    return n;
  }

  LogicalResult queueForm(QueuePlan &plan) {
    Block &entry = kernel.getBody().front();
    std::string cls = className(kernel.getSymName());
    auto tensorArgs = kernel.getTensorArgs();
    // Buffer names first: the stages refer to them as members.
    llvm::DenseMap<Operation *, std::string> queueName;
    for (auto [i, q] : llvm::enumerate(plan.queues))
      queueName[q.alloc] = (q.from == CopyIn && q.to == CopyOut ? "bind" : q.from == CopyIn ? "in" : "out") +
                           std::to_string(i);
    for (auto [i, arg] : llvm::enumerate(tensorArgs))
      names[arg] = "gm" + std::to_string(i);
    names[entry.getArgument(0)] = "block";
    for (AllocOp a : plan.tbufs)
      fresh(a.getResult(), "ub_");

    os << "class " << cls << " {\npublic:\n";
    depth = 1;
    indent() << "__aicore__ inline void Init(";
    for (auto [i, arg] : llvm::enumerate(tensorArgs))
      os << (i ? ", " : "") << "GM_ADDR gm" << i << "_addr";
    os << ") {\n";
    depth = 2;
    for (auto [i, arg] : llvm::enumerate(tensorArgs)) {
      auto b = cast<BufType>(arg.getType());
      indent() << "gm" << i << ".SetGlobalBuffer((__gm__ " << cType(b.getElementType()) << " *)gm" << i
               << "_addr); // " << shape(b) << "\n";
    }
    indent() << "block = GetBlockIdx();\n";
    for (QueuePlan::Queue &q : plan.queues) {
      auto b = cast<BufType>(q.alloc.getType());
      indent() << "pipe.InitBuffer(" << queueName[q.alloc] << ", " << q.alloc.getSlotsAttr().getInt() << ", "
               << b.getBytes() << "); // " << shape(b) << ", " << stageNames[q.from] << " -> "
               << stageNames[q.to] << "\n";
    }
    for (AllocOp a : plan.tbufs) {
      auto b = cast<BufType>(a.getType());
      std::string n = names[a.getResult()];
      indent() << "pipe.InitBuffer(" << n << "_buf, " << b.getBytes() * a.getSlotsAttr().getInt() << "); // "
               << a.getSlotsAttr().getInt() << " x " << shape(b) << "\n";
      indent() << n << " = " << n << "_buf.Get<" << cType(b.getElementType()) << ">();\n";
    }
    depth = 1;
    indent() << "}\n";

    // Process: the prologue, then the stages per tile.
    indent() << "__aicore__ inline void Process() {\n";
    depth = 2;
    bool stageUsed[NumStages] = {false, false, false};
    for (auto &[op, st] : plan.stageOf)
      stageUsed[st] = true;
    for (Operation &op : entry) {
      if (isa<AllocOp>(op) || plan.dropped.count(&op))
        continue;
      if (&op != plan.loop.getOperation()) {
        if (failed(statement(&op)))
          return failure();
        continue;
      }
      std::string iv = fresh(plan.loop.getInductionVar(), "i");
      indent() << "for (int64_t " << iv << " = " << expr(plan.loop.getLowerBound()) << "; " << iv << " < "
               << expr(plan.loop.getUpperBound()) << "; " << iv << " += " << expr(plan.loop.getStep())
               << ") {\n";
      for (int st = 0; st < NumStages; ++st)
        if (stageUsed[st])
          indent() << "  " << stageNames[st] << "(" << iv << ");\n";
      indent() << "}\n";
    }
    depth = 1;
    indent() << "}\n\nprivate:\n";

    Block &body = *plan.loop.getBody();
    for (int st = 0; st < NumStages; ++st) {
      if (!stageUsed[st])
        continue;
      std::string iv = names[plan.loop.getInductionVar()];
      indent() << "__aicore__ inline void " << stageNames[st] << "(int64_t " << iv << ") {\n";
      depth = 2;
      // Index math first: what this stage's work and its slots read.
      llvm::DenseSet<Value> needed;
      auto need = [&](Operation *op) {
        for (Value v : op->getOperands())
          needed.insert(v);
      };
      for (Operation &op : body) {
        auto it = plan.stageOf.find(&op);
        if (it != plan.stageOf.end() && it->second == st)
          need(&op);
        if (auto slot = dyn_cast<SlotOp>(op))
          if (st == Compute && llvm::is_contained(plan.tbufs, slot.getBuffer().getDefiningOp<AllocOp>()))
            need(&op);
      }
      for (Operation &op : llvm::reverse(body))
        if (isa<arith::ArithDialect>(op.getDialect()) && needed.count(op.getResult(0)))
          need(&op);
      for (Operation &op : body)
        if (isa<arith::ArithDialect>(op.getDialect()) && needed.count(op.getResult(0)) &&
            failed(statement(&op)))
          return failure();
      // The stage's tensors: allocated where they are filled, dequeued where drained.
      SmallVector<std::pair<QueuePlan::Queue *, bool>> held; // queue, produced here
      for (QueuePlan::Queue &q : plan.queues) {
        if (q.from != st && q.to != st)
          continue;
        auto b = cast<BufType>(q.slot.getType());
        std::string t = cType(b.getElementType());
        std::string n = fresh(q.slot.getResult());
        bool produce = q.from == st;
        indent() << "LocalTensor<" << t << "> " << n << " = " << queueName[q.alloc]
                 << (produce ? ".AllocTensor<" : ".DeQue<") << t << ">();\n";
        held.push_back({&q, produce});
      }
      for (Operation &op : body) {
        auto it = plan.stageOf.find(&op);
        if (it != plan.stageOf.end() && it->second == st && failed(statement(&op)))
          return failure();
        // A double-buffered scratch's slot, indexed as in the flag form.
        if (auto slot = dyn_cast<SlotOp>(op))
          if (llvm::is_contained(plan.tbufs, slot.getBuffer().getDefiningOp<AllocOp>()) && st == Compute &&
              failed(statement(&op)))
            return failure();
      }
      for (auto [q, produce] : held)
        indent() << queueName[q->alloc] << (produce ? ".EnQue(" : ".FreeTensor(") << expr(q->slot.getResult())
                 << ");\n";
      depth = 1;
      indent() << "}\n";
    }
    indent() << "TPipe pipe;\n";
    for (QueuePlan::Queue &q : plan.queues) {
      const char *pos = q.from == CopyIn && q.to == CopyOut ? "TQueBind<QuePosition::VECIN, QuePosition::VECOUT, "
                        : q.from == CopyIn                  ? "TQue<QuePosition::VECIN, "
                                                            : "TQue<QuePosition::VECOUT, ";
      indent() << pos << q.alloc.getSlotsAttr().getInt() << "> " << queueName[q.alloc] << ";\n";
    }
    for (AllocOp a : plan.tbufs) {
      std::string n = names[a.getResult()];
      indent() << "TBuf<QuePosition::VECCALC> " << n << "_buf;\n";
      indent() << "LocalTensor<" << cType(cast<BufType>(a.getType()).getElementType()) << "> " << n << ";\n";
    }
    for (auto [i, arg] : llvm::enumerate(tensorArgs))
      indent() << "GlobalTensor<" << cType(cast<BufType>(arg.getType()).getElementType()) << "> gm" << i
               << ";\n";
    indent() << "int64_t block;\n";
    depth = 0;
    os << "};\n\nextern \"C\" __global__ __aicore__ void " << kernel.getSymName() << "(";
    for (auto [i, arg] : llvm::enumerate(tensorArgs))
      os << (i ? ", " : "") << "GM_ADDR gm" << i << "_addr";
    os << ") {\n  KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);\n  " << cls << " op;\n  op.Init(";
    for (auto [i, arg] : llvm::enumerate(tensorArgs))
      os << (i ? ", " : "") << "gm" << i << "_addr";
    os << ");\n  op.Process();\n}\n";
    return success();
  }

  llvm::raw_ostream &indent() { return os.indent(2 * depth); }

  static std::string shape(BufType b) {
    std::string s;
    llvm::raw_string_ostream o(s);
    o << "[";
    llvm::interleave(b.getShape(), o, "x");
    o << "] " << cType(b.getElementType()) << " " << stringifyLayout(b.getLayout()).upper();
    return s;
  }

  void header() {
    os << "// Generated by attnedit from ascend.kernel @" << kernel.getSymName() << ": target "
       << kernel.getTarget() << ", " << kernel.getBlockDimAttr().getInt() << " blocks, "
       << stringifyCoreKind(kernel.getCore()) << " cores.\n";
    if (std::optional<DictionaryAttr> t = kernel.getTiling()) {
      os << "// TCubeTiling:";
      for (NamedAttribute f : *t)
        if (auto i = dyn_cast<IntegerAttr>(f.getValue()))
          os << " " << f.getName().strref() << "=" << i.getInt();
      os << "\n";
    }
    if (auto e = kernel->getAttrOfType<DictionaryAttr>("ascend.estimate")) {
      auto f = [&](StringRef k) { return cast<FloatAttr>(e.get(k)).getValueAsDouble(); };
      os << llvm::formatv("// Estimate: {0:f2} us, bound by {1}, {2:f1}% of the Cube peak.\n",
                          f("seconds") * 1e6, cast<StringAttr>(e.get("bound")).getValue(),
                          100 * f("cube_peak_fraction"));
    }
    os << "#include \"kernel_operator.h\"\nusing namespace AscendC;\n\n";
  }

  std::string expr(Value v) {
    auto it = names.find(v);
    if (it != names.end())
      return it->second;
    APInt c;
    if (auto cst = v.getDefiningOp<arith::ConstantOp>())
      if (auto i = dyn_cast<IntegerAttr>(cst.getValue()))
        return cst.getType().isInteger(1) ? (i.getInt() ? "true" : "false")
                                          : std::to_string(i.getInt());
    return "/*?*/0";
  }

  std::string fresh(Value v, StringRef prefix = "v") {
    std::string n = (prefix + llvm::Twine(counter++)).str();
    names[v] = n;
    return n;
  }

  /// C expression of the element offset of window (r, c) in `buf`.
  std::string offset(Value buf, OperandRange offsets) {
    auto b = cast<BufType>(buf.getType());
    SmallVector<std::string> o;
    for (Value v : offsets)
      o.push_back(expr(v));
    std::string r = o[o.size() - 2], c = o.back();
    // Constant windows fold to a number.
    bool literal = llvm::all_of(o, [](const std::string &x) {
      return !x.empty() && llvm::all_of(x, [](char ch) { return std::isdigit(ch); });
    });
    if (literal) {
      SmallVector<int64_t> idx;
      for (const std::string &x : o)
        idx.push_back(std::stoll(x));
      int64_t e;
      if (b.getSpace() == Space::GM) {
        e = 0;
        for (size_t d = 0; d < idx.size(); ++d)
          e = e * b.getShape()[d] + idx[d];
      } else {
        e = elementIndex(b.getLayout(), b.getRows(), b.getCols(), b.getElementBytes(), false,
                         idx[idx.size() - 2], idx.back());
      }
      return std::to_string(e);
    }
    if (b.getSpace() == Space::GM) {
      std::string lead = "0";
      for (size_t d = 0; d + 2 < o.size(); ++d)
        lead = "(" + lead + ") * " + std::to_string(b.getShape()[d]) + " + " + o[d];
      if (o.size() == 2)
        return llvm::formatv("({0}) * {1} + ({2})", r, b.getCols(), c).str();
      return llvm::formatv("(({0}) * {1} + ({2})) * {3} + ({4})", lead, b.getRows(), r, b.getCols(), c)
          .str();
    }
    int64_t pr, pc, eb = b.getElementBytes(), k = c0(eb);
    paddedShape(b.getLayout(), b.getRows(), b.getCols(), eb, false, pr, pc);
    if (r == "0" && c == "0")
      return "0";
    switch (b.getLayout()) {
    case Layout::ND:
      return llvm::formatv("({0}) * {1} + ({2})", r, pc, c).str();
    case Layout::NZ:
      return llvm::formatv("({0}) / {1} * {2} + ({3}) * {1} + ({0}) % {1}", c, k, pr * k, r).str();
    case Layout::ZZ:
      return llvm::formatv("(({0}) / 16 * {1} + ({2}) / {3}) * {4} + ({0}) % 16 * {3} + ({2}) % {3}",
                           r, pc / k, c, k, 16 * k)
          .str();
    case Layout::ZN:
      return llvm::formatv("(({0}) / {1} * {2} + ({3}) / 16) * {4} + ({3}) % 16 * {1} + ({0}) % {1}",
                           r, k, pc / 16, c, 16 * k)
          .str();
    }
    return "0";
  }

  std::string at(Value buf, OperandRange offsets) {
    std::string off = offset(buf, offsets);
    return off == "0" ? expr(buf) : expr(buf) + "[" + off + "]";
  }

  LogicalResult block(Block &b) {
    ++depth;
    for (Operation &op : b)
      if (failed(statement(&op)))
        return failure();
    --depth;
    return success();
  }

  LogicalResult binary(Operation *op, StringRef sym) {
    std::string a = expr(op->getOperand(0)), b = expr(op->getOperand(1));
    indent() << "const int64_t " << fresh(op->getResult(0)) << " = " << a << " " << sym << " " << b
             << ";\n";
    return success();
  }

  LogicalResult statement(Operation *op) {
    return llvm::TypeSwitch<Operation *, LogicalResult>(op)
        .Case([&](arith::ConstantOp) { return success(); }) // printed inline
        .Case([&](arith::AddIOp) { return binary(op, "+"); })
        .Case([&](arith::SubIOp) { return binary(op, "-"); })
        .Case([&](arith::MulIOp) { return binary(op, "*"); })
        .Case<arith::DivUIOp, arith::DivSIOp>([&](auto) { return binary(op, "/"); })
        .Case<arith::RemUIOp, arith::RemSIOp>([&](auto) { return binary(op, "%"); })
        .Case([&](arith::CmpIOp cmp) {
          static const char *syms[] = {"==", "!=", "<", "<=", ">", ">=", "<", "<=", ">", ">="};
          std::string a = expr(cmp.getLhs()), b = expr(cmp.getRhs());
          indent() << "const bool " << fresh(cmp.getResult()) << " = " << a << " "
                   << syms[static_cast<int>(cmp.getPredicate())] << " " << b << ";\n";
          return success();
        })
        .Case([&](scf::ForOp loop) {
          std::string iv = fresh(loop.getInductionVar(), "i");
          indent() << "for (int64_t " << iv << " = " << expr(loop.getLowerBound()) << "; " << iv
                   << " < " << expr(loop.getUpperBound()) << "; " << iv << " += "
                   << expr(loop.getStep()) << ") {\n";
          if (failed(block(*loop.getBody())))
            return failure();
          indent() << "}\n";
          return success();
        })
        .Case([&](scf::IfOp branch) {
          indent() << "if (" << expr(branch.getCondition()) << ") {\n";
          if (failed(block(branch.getThenRegion().front())))
            return failure();
          if (!branch.getElseRegion().empty()) {
            indent() << "} else {\n";
            if (failed(block(branch.getElseRegion().front())))
              return failure();
          }
          indent() << "}\n";
          return success();
        })
        .Case<arith::MinSIOp, arith::MinUIOp, arith::MaxSIOp, arith::MaxUIOp>([&](auto) {
          bool min = isa<arith::MinSIOp, arith::MinUIOp>(op);
          indent() << "const int64_t " << fresh(op->getResult(0)) << " = " << (min ? "min" : "max")
                   << "<int64_t>(" << expr(op->getOperand(0)) << ", " << expr(op->getOperand(1))
                   << ");\n";
          return success();
        })
        .Case<arith::OrIOp, arith::AndIOp>([&](auto) {
          std::string a = expr(op->getOperand(0)), b = expr(op->getOperand(1));
          indent() << "const bool " << fresh(op->getResult(0)) << " = " << a
                   << (isa<arith::OrIOp>(op) ? " || " : " && ") << b << ";\n";
          return success();
        })
        .Case([&](arith::SelectOp sel) {
          indent() << "const int64_t " << fresh(sel.getResult()) << " = " << expr(sel.getCondition())
                   << " ? " << expr(sel.getTrueValue()) << " : " << expr(sel.getFalseValue())
                   << ";\n";
          return success();
        })
        .Case([&](scf::YieldOp) { return success(); })
        .Case([&](AllocOp alloc) {
          auto b = cast<BufType>(alloc.getType());
          int64_t elems = b.getBytes() / b.getElementBytes();
          std::string n = fresh(alloc.getResult(), stringifySpace(b.getSpace()).str() + "_");
          indent() << "LocalTensor<" << cType(b.getElementType()) << "> " << n << "(TPosition::"
                   << position(b.getSpace()) << ", /*byte offset=*/" << alloc.getOffsetAttr().getInt()
                   << ", /*elements=*/" << elems * alloc.getSlotsAttr().getInt() << "); // "
                   << alloc.getSlotsAttr().getInt() << " x " << shape(b) << "\n";
          return success();
        })
        .Case([&](SlotOp slot) {
          auto alloc = slot.getBuffer().getDefiningOp<AllocOp>();
          auto b = cast<BufType>(slot.getType());
          int64_t elems = b.getBytes() / b.getElementBytes();
          std::string base = expr(slot.getBuffer()), idx = expr(slot.getIndex());
          indent() << "LocalTensor<" << cType(b.getElementType()) << "> " << fresh(slot.getResult())
                   << " = " << base << "[(" << idx << ") % " << alloc.getSlotsAttr().getInt()
                   << " * " << elems << "];\n";
          return success();
        })
        .Case([&](CopyOp copy) { return emitCopy(copy); })
        .Case([&](MmadOp mmad) {
          auto a = cast<BufType>(mmad.getA().getType()), b = cast<BufType>(mmad.getB().getType());
          indent() << "Mmad(" << expr(mmad.getC()) << ", " << expr(mmad.getA()) << ", "
                   << expr(mmad.getB()) << ", MmadParams{/*m=*/" << a.getRows() << ", /*n=*/"
                   << b.getCols() << ", /*k=*/" << a.getCols() << ", /*cmatrixInitVal=*/"
                   << expr(mmad.getInit()) << "}); // M\n";
          return success();
        })
        .Case([&](SetFlagOp f) {
          indent() << "SetFlag<" << eventName(f.getSrcPipe(), f.getDstPipe()) << ">("
                   << expr(f.getEvent()) << ");\n";
          return success();
        })
        .Case([&](WaitFlagOp f) {
          indent() << "WaitFlag<" << eventName(f.getSrcPipe(), f.getDstPipe()) << ">("
                   << expr(f.getEvent()) << ");\n";
          return success();
        })
        .Case([&](BarrierOp b) {
          indent() << "PipeBarrier<" << pipeMacro(b.getPipe()) << ">();\n";
          return success();
        })
        .Case([&](SyncAllOp) {
          indent() << "SyncAll();\n";
          return success();
        })
        .Case([&](CrossSetOp x) {
          // Mode 2: the AIC and the AIVs of one AI core (S23).
          indent() << "CrossCoreSetFlag<2, " << pipeMacro(x.getPipe()) << ">(" << expr(x.getFlag())
                   << ");\n";
          return success();
        })
        .Case([&](CrossWaitOp x) {
          indent() << "CrossCoreWaitFlag(" << expr(x.getFlag()) << ");\n";
          return success();
        })
        .Default([&](Operation *other) { return emitVector(other); });
  }

  LogicalResult emitCopy(CopyOp copy) {
    auto src = cast<BufType>(copy.getSrc().getType()), dst = cast<BufType>(copy.getDst().getType());
    int64_t rows = copy.getSizes()[0], cols = copy.getSizes()[1];
    std::string s = at(copy.getSrc(), copy.getSrcOffsets()), d = at(copy.getDst(), copy.getDstOffsets());
    if (copy.getIndex()) {
      // The id the scalar unit reads from UB (GetValue, after the flag that
      // orders its load) moves the GM address along index_dim.
      std::string id = "id" + std::to_string(indexReads++);
      indent() << "const int64_t " << id << " = static_cast<int64_t>("
               << expr(copy.getIndex()) << ".GetValue(" << offset(copy.getIndex(), copy.getIndexOffsets())
               << "));\n";
      bool srcGm = src.getSpace() == Space::GM;
      Value gmBuf = srcGm ? copy.getSrc() : copy.getDst();
      auto gm = srcGm ? src : dst;
      int64_t stride = 1;
      for (size_t k = *copy.getIndexDim() + 1; k < gm.getShape().size(); ++k)
        stride *= gm.getShape()[k];
      std::string moved = expr(gmBuf) + "[" + offset(gmBuf, srcGm ? copy.getSrcOffsets() : copy.getDstOffsets()) +
                          " + " + id + " * " + std::to_string(stride) + "]";
      (srcGm ? s : d) = moved;
    }
    std::string what = llvm::formatv("// {0}: {1} -> {2}, {3}x{4}", stringifyPipe(copy.getPipe()).upper(),
                                     stringifySpace(src.getSpace()).upper(),
                                     stringifySpace(dst.getSpace()).upper(), rows, cols)
                           .str();
    if (copy.getPipe() == Pipe::MTE2 && dst.getLayout() == Layout::NZ) {
      // S8: ND -> NZ on the fly (Nd2NzParams: ndNum, nValue, dValue, srcNdMatrixStride,
      // srcDValue, dstNzC0Stride, dstNzNStride, dstNzMatrixStride).
      indent() << "DataCopy(" << d << ", " << s << ", Nd2NzParams{1, " << rows << ", " << cols
               << ", 0, " << src.getCols() << ", " << roundUp(dst.getRows(), 16) << ", 1, 0}); "
               << what << " ND->NZ\n";
    } else if (copy.getPipe() == Pipe::MTE1) {
      indent() << "LoadData(" << d << ", " << s << ", LoadData2DParams{/*repeatTimes=*/"
               << (roundUp(rows, 16) / 16) * (roundUp(cols, 16) / 16) << ", /*ifTranspose=*/"
               << (copy.getTranspose() ? "true" : "false") << "}); " << what << "\n";
    } else if (copy.getPipe() == Pipe::FIX) {
      indent() << "Fixpipe(" << d << ", " << s << ", FixpipeParamsV220{/*nSize=*/" << cols
               << ", /*mSize=*/" << rows << ", /*srcStride=*/" << roundUp(src.getRows(), 16)
               << ", /*dstStride=*/" << dst.getCols() << ", /*nz2nd=*/true, /*quantPre=*/"
               << (dst.getElementType().isF32()   ? "NoQuant"
                   : dst.getElementType().isF16() ? "F322F16"
                                                  : "F322BF16")
               << "}); " << what << "\n";
    } else {
      // GM <-> UB and the coupled L0C -> UB: rows of 32-byte blocks (S62 DataCopyParams).
      auto gmSide = src.getSpace() == Space::GM ? src : dst;
      int64_t eb = dst.getElementBytes();
      indent() << "DataCopy(" << d << ", " << s << ", DataCopyParams{/*blockCount=*/" << rows
               << ", /*blockLen=*/" << (roundUp(cols * eb, 32) / 32) << ", /*srcStride=*/"
               << ((gmSide.getCols() - cols) * eb) / 32 << ", /*dstStride=*/0}); " << what << "\n";
    }
    return success();
  }

  LogicalResult emitVector(Operation *op) {
    auto n = [&](Value v) {
      auto b = cast<BufType>(v.getType());
      return b.getBytes() / b.getElementBytes();
    };
    auto scalar = [](FloatAttr f) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.9g", f.getValueAsDouble());
      std::string text = buf;
      if (text.find_first_of(".en") == std::string::npos)
        text += ".0"; // a float literal, not an int
      return text;
    };
    std::string line =
        llvm::TypeSwitch<Operation *, std::string>(op)
            .Case([&](VAddOp v) { return "Add(" + expr(v.getDst()) + ", " + expr(v.getLhs()) + ", " + expr(v.getRhs()) + ", " + std::to_string(n(v.getDst())) + ")"; })
            .Case([&](VSubOp v) { return "Sub(" + expr(v.getDst()) + ", " + expr(v.getLhs()) + ", " + expr(v.getRhs()) + ", " + std::to_string(n(v.getDst())) + ")"; })
            .Case([&](VMulOp v) { return "Mul(" + expr(v.getDst()) + ", " + expr(v.getLhs()) + ", " + expr(v.getRhs()) + ", " + std::to_string(n(v.getDst())) + ")"; })
            .Case([&](VDivOp v) { return "Div(" + expr(v.getDst()) + ", " + expr(v.getLhs()) + ", " + expr(v.getRhs()) + ", " + std::to_string(n(v.getDst())) + ")"; })
            .Case([&](VMaxOp v) { return "Max(" + expr(v.getDst()) + ", " + expr(v.getLhs()) + ", " + expr(v.getRhs()) + ", " + std::to_string(n(v.getDst())) + ")"; })
            .Case([&](VExpOp v) { return "Exp(" + expr(v.getDst()) + ", " + expr(v.getSrc()) + ", " + std::to_string(n(v.getDst())) + ")"; })
            .Case([&](VSqrtOp v) { return "Sqrt(" + expr(v.getDst()) + ", " + expr(v.getSrc()) + ", " + std::to_string(n(v.getDst())) + ")"; })
            .Case([&](VSinOp v) { return "Sin(" + expr(v.getDst()) + ", " + expr(v.getSrc()) + ", " + std::to_string(n(v.getDst())) + ")"; })
            .Case([&](VCosOp v) { return "Cos(" + expr(v.getDst()) + ", " + expr(v.getSrc()) + ", " + std::to_string(n(v.getDst())) + ")"; })
            .Case([&](VLnOp v) { return "Ln(" + expr(v.getDst()) + ", " + expr(v.getSrc()) + ", " + std::to_string(n(v.getDst())) + ")"; })
            .Case([&](VTransposeOp v) {
              auto s = cast<BufType>(v.getSrc().getType());
              return "TransDataTo5HD(" + expr(v.getDst()) + ", " + expr(v.getSrc()) + ", /*rows=*/" +
                     std::to_string(s.getRows()) + ", /*cols=*/" + std::to_string(s.getCols()) + ")";
            })
            .Case([&](VRecOp v) { return "Reciprocal(" + expr(v.getDst()) + ", " + expr(v.getSrc()) + ", " + std::to_string(n(v.getDst())) + ")"; })
            .Case([&](VAddsOp v) { return "Adds(" + expr(v.getDst()) + ", " + expr(v.getSrc()) + ", " + scalar(v.getScalarAttr()) + "f, " + std::to_string(n(v.getDst())) + ")"; })
            .Case([&](VMulsOp v) { return "Muls(" + expr(v.getDst()) + ", " + expr(v.getSrc()) + ", " + scalar(v.getScalarAttr()) + "f, " + std::to_string(n(v.getDst())) + ")"; })
            .Case([&](VDupOp v) { return "Duplicate(" + expr(v.getDst()) + ", " + scalar(v.getScalarAttr()) + "f, " + std::to_string(n(v.getDst())) + ")"; })
            .Case([&](VCastOp v) { return "Cast(" + expr(v.getDst()) + ", " + expr(v.getSrc()) + ", RoundMode::CAST_RINT, " + std::to_string(n(v.getDst())) + ")"; })
            .Case([&](VReduceOp v) {
              auto s = cast<BufType>(v.getSrc().getType());
              return std::string(v.getKind() == ReduceKind::Sum ? "WholeReduceSum" : "WholeReduceMax") + "(" +
                     expr(v.getDst()) + ", " + expr(v.getSrc()) + ", /*mask=*/" + std::to_string(s.getCols()) +
                     ", /*repeatTimes=*/" + std::to_string(s.getRows()) + ")";
            })
            .Case([&](VBrcbOp v) {
              auto d = cast<BufType>(v.getDst().getType());
              return "Brcb(" + expr(v.getDst()) + ", " + expr(v.getSrc()) + ", /*rows=*/" +
                     std::to_string(d.getRows()) + ", /*cols=*/" + std::to_string(d.getCols()) + ")";
            })
            .Case([&](VGatherOp v) {
              // Per row; the offsets tile holds byte offsets on the device.
              return "Gather(" + expr(v.getDst()) + ", " + expr(v.getSrc()) + ", " +
                     expr(v.getIndex()) + ", /*srcBaseAddr=*/0, " + std::to_string(n(v.getDst())) + ")";
            })
            .Default([](Operation *) { return std::string(); });
    if (line.empty())
      return op->emitError() << "the Ascend C emitter does not know " << op->getName();
    indent() << line << "; // V\n";
    return success();
  }

  KernelOp kernel;
  llvm::raw_ostream &os;
  llvm::DenseMap<Value, std::string> names;
  int depth = 0;
  int64_t indexReads = 0; // ids read for indexed copies
  int counter = 0;
};

} // namespace

LogicalResult mlir::attnedit::ascend::emitAscendC(KernelOp kernel, llvm::raw_ostream &os) {
  return Emitter(kernel, os).run();
}
