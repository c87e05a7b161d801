//===- BlasSetup.cpp - choosing OpenBLAS's kernel from the CPU -------------===//

#include "attnedit/Runtime/Execution/BlasSetup.h"

#include <cstdlib>
#include <unistd.h>

void mlir::attnedit::selectBlasKernel(char **argv) {
  if (std::getenv("OPENBLAS_CORETYPE"))
    return;
  // Only where the CPU has the instructions the kernel needs; other CPUs
  // keep OpenBLAS's own detection.
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f"))
    return;
  if (setenv("OPENBLAS_CORETYPE", "SkylakeX", /*overwrite=*/0) != 0)
    return;
  execv("/proc/self/exe", argv);
  // Still here: exec failed; run on, and keep the variable out of children.
  unsetenv("OPENBLAS_CORETYPE");
}
