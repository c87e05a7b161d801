//===- ScheduleFlatbuffer.cpp - Schedule <-> ascend_schedule.fbs ----------===//

#include "attnedit/Ascend/ScheduleFlatbuffer.h"

#include "ascend_schedule_generated.h"

using namespace mlir::attnedit::ascend;
namespace fb = attnedit::ascend::fb;

namespace {

flatbuffers::Offset<fb::Window> writeWindow(flatbuffers::FlatBufferBuilder &b, const Window &w) {
  if (w.tile.shape.empty())
    return 0;
  std::vector<int64_t> shape(w.tile.shape.begin(), w.tile.shape.end());
  std::vector<int64_t> offsets(w.offsets.begin(), w.offsets.end());
  return fb::CreateWindow(b, static_cast<fb::Space>(w.tile.space), w.tile.gmArg, w.tile.offset,
                          b.CreateVector(shape), static_cast<fb::DType>(w.tile.dtype),
                          static_cast<fb::Layout>(w.tile.layout), b.CreateVector(offsets));
}

Window readWindow(const fb::Window *w) {
  Window out;
  if (!w)
    return out;
  out.tile.space = static_cast<Space>(w->space());
  out.tile.gmArg = w->gm_arg();
  out.tile.offset = w->byte_offset();
  if (w->shape())
    out.tile.shape.assign(w->shape()->begin(), w->shape()->end());
  out.tile.dtype = static_cast<DType>(w->dtype());
  out.tile.layout = static_cast<Layout>(w->layout());
  if (w->offsets())
    out.offsets.assign(w->offsets()->begin(), w->offsets()->end());
  return out;
}

llvm::Error invalid(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "invalid Ascend schedule flatbuffer: " + msg);
}

} // namespace

std::vector<uint8_t> mlir::attnedit::ascend::serializeSchedules(llvm::ArrayRef<const Schedule *> schedules) {
  flatbuffers::FlatBufferBuilder b(1 << 16);
  std::vector<flatbuffers::Offset<fb::Schedule>> all;
  for (const Schedule *s : schedules) {
    std::vector<flatbuffers::Offset<fb::GmTensor>> gm;
    for (const GmTensor &g : s->gm)
      gm.push_back(fb::CreateGmTensor(b, b.CreateVector(g.shape), static_cast<fb::DType>(g.dtype),
                                      g.workspace, g.viewWidth, g.viewPitch, g.viewOffset,
                                      g.viewElements));
    std::vector<flatbuffers::Offset<fb::CoreProgram>> cores;
    for (const CoreProgram &p : s->cores) {
      std::vector<flatbuffers::Offset<fb::Instr>> instrs;
      instrs.reserve(p.instrs.size());
      for (const Instr &i : p.instrs) {
        auto src0 = writeWindow(b, i.src0), src1 = writeWindow(b, i.src1), dst = writeWindow(b, i.dst);
        auto index = writeWindow(b, i.index);
        instrs.push_back(fb::CreateInstr(
            b, static_cast<fb::InstrKind>(i.kind), static_cast<fb::Pipe>(i.pipe),
            static_cast<fb::VectorOp>(i.vop), src0, src1, dst, i.rows, i.cols, i.transpose, i.init,
            i.scalar, static_cast<fb::Pipe>(i.flagSrc), static_cast<fb::Pipe>(i.flagDst), i.event,
            i.where, index, i.indexDim));
      }
      cores.push_back(fb::CreateCoreProgram(b, p.block, b.CreateVector(instrs),
                                            static_cast<fb::CoreKind>(p.kind), p.sub));
    }
    std::vector<flatbuffers::Offset<flatbuffers::String>> locations;
    for (const std::string &l : s->locations)
      locations.push_back(b.CreateString(l));
    all.push_back(fb::CreateSchedule(
        b, b.CreateString(s->kernel), b.CreateString(s->targetRef.empty() ? s->target->name : s->targetRef),
        static_cast<fb::CoreKind>(s->core), s->blockDim, b.CreateVector(gm), b.CreateVector(cores),
        b.CreateVector(locations)));
  }
  b.Finish(fb::CreateScheduleSet(b, b.CreateVector(all)), fb::ScheduleSetIdentifier());
  return std::vector<uint8_t>(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
}

llvm::Expected<std::vector<Schedule>>
mlir::attnedit::ascend::deserializeSchedules(llvm::ArrayRef<uint8_t> bytes) {
  flatbuffers::Verifier verifier(bytes.data(), bytes.size());
  if (!fb::ScheduleSetBufferHasIdentifier(bytes.data()) || !fb::VerifyScheduleSetBuffer(verifier))
    return invalid("missing identifier \"AESC\" or failed verification");
  const fb::ScheduleSet *set = fb::GetScheduleSet(bytes.data());
  std::vector<Schedule> out;
  if (!set->schedules())
    return out;
  for (const fb::Schedule *fs : *set->schedules()) {
    if (!fs->kernel() || !fs->target())
      return invalid("a schedule without kernel or target name");
    Schedule s;
    s.kernel = fs->kernel()->str();
    s.targetRef = fs->target()->str();
    llvm::Expected<std::shared_ptr<const TargetDescription>> t = TargetDescription::load(s.targetRef);
    if (!t)
      return t.takeError();
    s.target = *t;
    s.core = static_cast<CoreKind>(fs->core());
    s.blockDim = fs->block_dim();
    if (fs->locations()) {
      s.locations.clear();
      for (const flatbuffers::String *l : *fs->locations())
        s.locations.push_back(l->str());
    }
    if (fs->gm())
      for (const fb::GmTensor *g : *fs->gm()) {
        GmTensor tensor;
        if (g->shape())
          tensor.shape.assign(g->shape()->begin(), g->shape()->end());
        tensor.dtype = static_cast<DType>(g->dtype());
        tensor.workspace = g->workspace();
        tensor.viewWidth = g->view_width();
        tensor.viewPitch = g->view_pitch();
        tensor.viewOffset = g->view_offset();
        tensor.viewElements = g->view_elements();
        if (!tensor.viewFits())
          return invalid("GM tensor with a malformed view in " + s.kernel);
        s.gm.push_back(std::move(tensor));
      }
    if (fs->cores())
      for (const fb::CoreProgram *fp : *fs->cores()) {
        CoreProgram p;
        p.block = fp->block();
        p.kind = s.core == CoreKind::Mix ? static_cast<CoreKind>(fp->kind()) : s.core;
        p.sub = fp->sub();
        if (fp->instrs())
          for (const fb::Instr *fi : *fp->instrs()) {
            Instr i;
            i.kind = static_cast<InstrKind>(fi->kind());
            i.pipe = static_cast<Pipe>(fi->pipe());
            i.vop = static_cast<VectorOp>(fi->vop());
            i.src0 = readWindow(fi->src0());
            i.src1 = readWindow(fi->src1());
            i.dst = readWindow(fi->dst());
            i.rows = fi->rows();
            i.cols = fi->cols();
            i.transpose = fi->transpose();
            i.init = fi->init();
            i.scalar = fi->scalar();
            i.flagSrc = static_cast<Pipe>(fi->flag_src());
            i.flagDst = static_cast<Pipe>(fi->flag_dst());
            i.event = fi->event();
            i.where = fi->where() < s.locations.size() ? fi->where() : 0;
            i.index = readWindow(fi->index());
            i.indexDim = fi->index_dim();
            if (i.indexDim >= 0 &&
                (i.kind != InstrKind::Copy || i.index.tile.space != Space::UB ||
                 i.index.offsets.size() != i.index.tile.shape.size() || i.index.offsets.empty()))
              return invalid("indexed copy with a malformed index in " + s.kernel);
            // A window must index its buffer, or the simulator would read past it.
            for (const Window *w : {&i.src0, &i.src1, &i.dst})
              if (w->offsets.size() != w->tile.shape.size() ||
                  (!w->tile.shape.empty() && w->tile.space == Space::GM &&
                   (w->tile.gmArg < 0 || w->tile.gmArg >= (int64_t)s.gm.size())))
                return invalid("instruction with a malformed window in " + s.kernel);
            p.instrs.push_back(std::move(i));
          }
        s.cores.push_back(std::move(p));
      }
    out.push_back(std::move(s));
  }
  return out;
}
