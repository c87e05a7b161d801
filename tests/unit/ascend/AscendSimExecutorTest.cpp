//===- AscendSimExecutorTest.cpp - --backend=ascend-sim's options ---------===//
//
// The executor's set-up: what it refuses before any work, and what its
// errors tell the user to do.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Runtime/Execution/Executor.h"

#include <gtest/gtest.h>

#include <cstdlib>

using namespace mlir::attnedit;

namespace {

/// The error creating the executor gives ("" if none).
std::string createError(const char *fallback, llvm::StringRef target = "910b",
                        llvm::StringRef dtype = "bf16") {
  if (fallback)
    setenv("ATTNEDIT_ASCEND_FALLBACK", fallback, 1);
  else
    unsetenv("ATTNEDIT_ASCEND_FALLBACK");
  auto executor = createAscendSimExecutor(target, dtype);
  unsetenv("ATTNEDIT_ASCEND_FALLBACK");
  return executor ? "" : llvm::toString(executor.takeError());
}

// Tests that ATTNEDIT_ASCEND_FALLBACK takes only its documented value (or
// none): "REFUSE" or "error" ran ops on the reference kernels, the very
// thing the variable was set to forbid.
TEST(AscendSimExecutor, FallbackPolicyIsChecked) {
  EXPECT_EQ(createError(nullptr), "");
  EXPECT_EQ(createError(""), "");
  EXPECT_EQ(createError("refuse"), "");
  const std::string expected = "ATTNEDIT_ASCEND_FALLBACK: expected 'refuse' (or unset: ops "
                               "without an Ascend lowering run on the reference kernels), got ";
  EXPECT_EQ(createError("REFUSE"), expected + "'REFUSE'");
  EXPECT_EQ(createError("error"), expected + "'error'");
}

// Tests that picking the 910A alone (bf16 is the default dtype, its Cube
// has none) says which --ascend-dtype to pass.
TEST(AscendSimExecutor, CubeModeErrorNamesTheOption) {
  EXPECT_EQ(createError(nullptr, "910a"),
            "ascend-sim: the 910a Cube has no bf16 mode; pass --ascend-dtype=f16");
  EXPECT_EQ(createError(nullptr, "910a", "f16"), "");
}

} // namespace
