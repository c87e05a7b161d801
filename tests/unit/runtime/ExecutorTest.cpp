//===- ExecutorTest.cpp - the Executor interface and the backend registry ---===//

#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Runtime/Execution/Executor.h"

#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

using namespace mlir;
using namespace mlir::attnedit;

namespace {

const char *kModule = R"mlir(
func.func @f(%x: tensor<2x3xf32>, %y: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = attnedit.add %x, %y : tensor<2x3xf32>
  %1 = attnedit.silu %0 : tensor<2x3xf32>
  return %1 : tensor<2x3xf32>
}
)mlir";

Tensor filled(llvm::ArrayRef<int64_t> shape, float start) {
  Tensor t = Tensor::zeros(shape);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.mutableData()[i] = start + 0.25f * i;
  return t;
}

// Tests that the reference executor is the interpreter, bit for bit, both by
// function and by name.
TEST(ExecutorTest, ReferenceIsTheInterpreter) {
  MLIRContext context;
  context.loadDialect<AttnEditDialect, func::FuncDialect>();
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(kModule, &context);
  ASSERT_TRUE(module);
  ParameterStore none;
  std::vector<Tensor> args = {filled({2, 3}, -1.0f), filled({2, 3}, 0.5f)};
  auto expected = evaluate(module->lookupSymbol<func::FuncOp>("f"), args, none);
  ASSERT_TRUE(bool(expected)) << llvm::toString(expected.takeError());
  std::unique_ptr<Executor> executor = createReferenceExecutor();
  EXPECT_EQ(executor->backend(), "reference");
  auto got = executor->run(*module, "f", args, none);
  ASSERT_TRUE(bool(got)) << llvm::toString(got.takeError());
  for (int64_t i = 0; i < 6; ++i)
    EXPECT_EQ(got->front().data()[i], expected->front().data()[i]);

  auto missing = executor->run(*module, "g", args, none);
  ASSERT_FALSE(bool(missing));
  EXPECT_NE(llvm::toString(missing.takeError()).find("g: the module has no such function"),
            std::string::npos);
}

// Tests that an unknown backend name is refused with the known names listed
// and leaves the default executor as it was.
TEST(ExecutorTest, UnknownBackendIsAnError) {
  llvm::StringRef before = defaultExecutor().backend();
  llvm::Error e = setDefaultBackend("gpu");
  ASSERT_TRUE(bool(e));
  std::string message = llvm::toString(std::move(e));
  EXPECT_NE(message.find("unknown backend 'gpu'"), std::string::npos) << message;
  EXPECT_NE(message.find("reference"), std::string::npos) << message;
  EXPECT_EQ(defaultExecutor().backend(), before);
}

} // namespace
