//===- Model.cpp - loading models and running their functions -----------------===//

#include "attnedit/Runtime/Execution/Model.h"
#include "attnedit/Frontend/AtomicFile.h"
#include "attnedit/Frontend/Error.h"
#include "attnedit/Frontend/Importer.h"
#include "attnedit/Frontend/InputFile.h"
#include "attnedit/IR/AttnEditDialect.h"
#include "attnedit/Passes/Passes.h"
#include "attnedit/Runtime/Execution/Evaluator.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <fstream>

using namespace mlir::attnedit;
using namespace mlir;

static void loadModelDialects(MLIRContext &ctx) {
  ctx.loadDialect<attnedit::AttnEditDialect, arith::ArithDialect, func::FuncDialect>();
}

/// An attnedit module, as text or bytecode (both parse the same way).
static bool isModuleFile(llvm::StringRef path) {
  llvm::StringRef ext = llvm::sys::path::extension(path);
  return ext == ".mlir" || ext == ".mlirbc";
}

std::vector<std::string> Model::filesNamedBy(llvm::StringRef path) {
  bool compiled = isCompiledModel(path);
  if (!compiled && !isModuleFile(path))
    return {};
  MLIRContext ctx;
  loadModelDialects(ctx);
  ctx.getDiagEngine().registerHandler([](Diagnostic &) { return success(); });
  auto text = readInputFile(compiled ? compiledModelModule(path) : path.str());
  if (!text)
    return {};
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(std::move(*text), llvm::SMLoc());
  auto module = parseSourceFile<ModuleOp>(sourceMgr, &ctx);
  if (!module)
    return {};
  std::vector<std::string> files;
  for (std::string &file : parameterFilesOf(*module))
    files.push_back(std::move(file));
  if (auto t = (*module)->getAttrOfType<StringAttr>(attrs::kTokenizer))
    files.push_back(resolveModulePath(*module, t.getValue()));
  return files;
}

llvm::Expected<std::unique_ptr<Model>> Model::load(llvm::StringRef path,
                                                   llvm::StringRef tokenizerPath) {
  std::unique_ptr<Model> model(new Model());
  model->context = std::make_unique<MLIRContext>();
  MLIRContext &ctx = *model->context;
  loadModelDialects(ctx);

  // An attnedit-compile artifact is its module run by its compiled code.
  bool compiled = isCompiledModel(path);
  if (compiled || isModuleFile(path)) {
    std::string file = compiled ? compiledModelModule(path) : path.str();
    std::string diagnostics;
    llvm::raw_string_ostream os(diagnostics);
    // Read here, not by the parser: its error leaves out why ("could not
    // open input file" for a directory or an unreadable file).
    auto buffer = readInputFile(file);
    if (!buffer)
      return makeError(file, "cannot read: " + buffer.getError().message());
    llvm::SourceMgr sourceMgr;
    sourceMgr.AddNewSourceBuffer(std::move(*buffer), llvm::SMLoc());
    SourceMgrDiagnosticHandler handler(sourceMgr, &ctx, os);
    model->moduleOp = parseSourceFile<ModuleOp>(sourceMgr, &ctx);
    if (!model->moduleOp)
      return makeError(file, diagnostics.empty() ? "cannot parse" : "cannot parse:\n" + diagnostics);
    if (llvm::Error e = model->parameters.openModuleFiles(*model->moduleOp))
      return std::move(e);
    if (compiled) {
      auto executor = openCompiledModel(path, model->parameters);
      if (!executor)
        return executor.takeError();
      model->ownExecutor = std::move(*executor);
    }
  } else {
    // The importer names the checkpoint formats; a model here can be more.
    if (llvm::sys::fs::is_regular_file(path) && llvm::sys::path::extension(path) != ".bin")
      return makeError(path, "unknown model format: expected a Hugging Face model directory, "
                             "a llama2.c .bin checkpoint, an attnedit module (.mlir, or "
                             ".mlirbc bytecode) or an attnedit-compile artifact");
    llvm::Expected<Checkpoint> checkpoint = openCheckpoint(path);
    if (!checkpoint)
      return checkpoint.takeError();
    auto module = importCheckpoint(ctx, *checkpoint);
    if (!module)
      return module.takeError();
    model->moduleOp = std::move(*module);
    for (auto &file : checkpoint->files)
      model->parameters.add(std::move(file));
  }
  if (llvm::Error e = model->configure(tokenizerPath))
    return std::move(e);
  return model;
}

llvm::Error Model::configure(llvm::StringRef tokenizerPath) {
  Operation *m = moduleOp->getOperation();
  forwardFunc = moduleOp->lookupSymbol<func::FuncOp>("forward");
  if (!forwardFunc)
    return makeError("module", "has no func.func @forward");
  if (auto why = whyNotOneBlock(forwardFunc))
    return makeError("module", *why);
  auto results = forwardFunc.getFunctionType().getResults();
  auto logits = results.size() == 1 ? dyn_cast<RankedTensorType>(results[0]) : nullptr;
  if (!logits || logits.getRank() != 2 || logits.isDynamicDim(1))
    return makeError("module", "@forward must return logits of type tensor<?xVxf32>");
  vocab = logits.getDimSize(1);
  if (auto max = m->getAttrOfType<IntegerAttr>(attrs::kMaxPositions))
    maxLength = max.getInt();
  if (auto b = m->getAttrOfType<IntegerAttr>(attrs::kBosToken))
    bos = (int32_t)b.getInt();
  if (auto s = m->getAttrOfType<DenseI32ArrayAttr>(attrs::kStopTokens))
    stops.assign(s.asArrayRef().begin(), s.asArrayRef().end());
  sampling = m->getAttrOfType<DictionaryAttr>(attrs::kSamplingDefaults);
  if (sampling && sampling.empty())
    sampling = nullptr;
  // The dialect checked their kinds; the vocabulary is @forward's.
  std::vector<int32_t> special = stops;
  if (bos)
    special.push_back(*bos);
  for (int32_t id : special)
    if (id >= vocab)
      return makeError("module", llvm::formatv("token id {0} ({1} or {2}) is past the "
                                               "vocabulary of {3}",
                                               id, attrs::kBosToken, attrs::kStopTokens, vocab)
                                     .str());

  tokenizerFile = tokenizerPath.str();
  if (tokenizerFile.empty())
    if (auto t = m->getAttrOfType<StringAttr>(attrs::kTokenizer))
      tokenizerFile = resolveModulePath(m, t.getValue());
  return llvm::Error::success();
}

llvm::Expected<const Tokenizer *> Model::tokenizer() {
  if (tok || tokenizerFile.empty())
    return tok.get();
  auto loaded = loadTokenizer(tokenizerFile, vocab);
  if (!loaded)
    return loaded.takeError();
  tok = std::move(*loaded);
  return tok.get();
}

llvm::Error attnedit::requireFiniteLogits(llvm::ArrayRef<float> logits, int64_t vocab,
                                          llvm::StringRef what) {
  auto bad = llvm::find_if(logits, [](float x) { return !std::isfinite(x); });
  if (bad == logits.end())
    return llvm::Error::success();
  int64_t at = bad - logits.begin();
  std::string row = logits.size() > (size_t)vocab ? llvm::formatv(" at position {0}", at / vocab)
                                                  : std::string();
  return makeError(what, llvm::formatv("the model's logit of token {0}{1} is {2}: the weights "
                                       "or the computation hold NaN or infinities",
                                       at % vocab, row, *bad)
                             .str());
}

llvm::Expected<Tensor> Model::forward(llvm::ArrayRef<int32_t> tokens) {
  auto results = call("forward", tokens);
  if (!results)
    return results.takeError();
  // The type says [?, V]; a hand-written body can still return another row
  // count, which every reader of a row per token would misread.
  const Tensor &logits = results->front();
  if (logits.dim(0) != (int64_t)tokens.size())
    return makeError("forward", llvm::formatv("returned logits of shape {0} for {1} tokens: "
                                              "@forward must return a row per token",
                                              logits.shapeString(), tokens.size())
                                    .str());
  return logits;
}

llvm::Expected<std::vector<Tensor>> Model::call(llvm::StringRef name,
                                                llvm::ArrayRef<int32_t> tokens) {
  auto func = moduleOp->lookupSymbol<func::FuncOp>(name);
  if (!func)
    return makeError(name, "the module has no such function");
  if (auto why = whyNotOneBlock(func))
    return makeError("module", *why);
  // A stage=lm step also takes targets: the sequence's next tokens.
  bool lm = func.getNumArguments() == 3;
  if (lm && tokens.size() < 2)
    return makeError(name, "takes next-token targets: give at least two tokens (the "
                           "sequence and the token after it)");
  llvm::ArrayRef<int32_t> inputs = lm ? tokens.drop_back() : tokens;
  std::vector<int32_t> positions(inputs.size());
  for (size_t i = 0; i < positions.size(); ++i)
    positions[i] = (int32_t)i;
  std::vector<Tensor> args{Tensor::ints(inputs.vec()), Tensor::ints(positions)};
  if (lm)
    args.push_back(Tensor::ints(tokens.drop_front().vec()));
  return executor().run(func, args, parameters);
}

llvm::Error attnedit::writeNpy(llvm::StringRef path, const Tensor &tensor) {
  std::string shape = "(";
  for (int64_t d : tensor.shape())
    shape += std::to_string(d) + ",";
  if (tensor.rank() > 1)
    shape.pop_back();
  shape += ")";
  std::string header =
      "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  // NPY v1: magic, version, u16 header length; the header is space-padded so
  // the data starts on a 64-byte boundary and ends with a newline.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  return writeFileAtomically(path, [&](llvm::raw_ostream &os) {
    os << "\x93NUMPY" << '\x01' << '\x00';
    uint16_t len = header.size();
    os.write(reinterpret_cast<const char *>(&len), 2);
    os << header;
    os.write(reinterpret_cast<const char *>(tensor.data()), tensor.numel() * sizeof(float));
  });
}
