//===- BlasSetup.cpp - OpenBLAS's kernel and OpenMP's waiting, per machine -===//

#include "attnedit/Runtime/Execution/BlasSetup.h"

#include <cstdlib>
#include <unistd.h>

void mlir::attnedit::configureMathLibraries(char **argv) {
  bool changed = false;
  auto setIfUnset = [&](const char *name, const char *value) {
    if (!std::getenv(name) && setenv(name, value, /*overwrite=*/0) == 0)
      changed = true;
  };
  // Only where the CPU has the instructions the kernel needs; other CPUs
  // keep OpenBLAS's own detection.
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f"))
    setIfUnset("OPENBLAS_CORETYPE", "SkylakeX");
  setIfUnset("OMP_WAIT_POLICY", "PASSIVE");
  if (!changed)
    return;
  execv("/proc/self/exe", argv);
  // Still here: exec failed; run on with the libraries' defaults.
}
