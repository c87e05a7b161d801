//===- BlasSetup.h - choosing OpenBLAS's kernel from the CPU ----*- C++ -*-===//
//
// Debian's OpenBLAS 0.3.21 does not recognise this machine's AVX-512 CPU and
// falls back to its Prescott (SSE3) kernels: 17–20 GFLOP/s on sgemm here,
// against 93–142 with its SkylakeX kernels (README "CPU backend"). OpenBLAS
// reads OPENBLAS_CORETYPE once, when the library loads, so a tool that wants
// the right kernel has to be started with it: selectBlasKernel re-executes
// the tool with OPENBLAS_CORETYPE=SkylakeX when the CPU has AVX-512F and the
// user has not set the variable (a value the user set is never overridden).
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_EXECUTION_BLASSETUP_H
#define ATTNEDIT_RUNTIME_EXECUTION_BLASSETUP_H

namespace mlir::attnedit {

/// Call first thing in main(); returns only if no re-execution was needed
/// (or it failed, in which case the tool runs with what OpenBLAS chose).
void selectBlasKernel(char **argv);

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_EXECUTION_BLASSETUP_H
