//===- BlasSetup.h - OpenBLAS's kernel and OpenMP's waiting, per machine -*- C++ -*-===//
//
// Two settings the math libraries read once, when they load, from the
// environment, so a tool that wants them has to be started with them:
// - Debian's OpenBLAS 0.3.21 did not recognise the first VM's AVX-512 CPU
//   and fell back to its Prescott (SSE3) kernels: 17–20 GFLOP/s on sgemm
//   there, against 93–142 with OPENBLAS_CORETYPE=SkylakeX (README "CPU
//   backend"); later VMs (Intel, AMD EPYC) got an AVX-512 kernel either
//   way. Set only where the CPU has AVX-512F.
// - OpenMP threads (OpenBLAS's and our kernels') that spin between parallel
//   regions steal the cores from the serial code between them as soon as
//   anything else runs: a 512-token prefill took 0.32–0.71 s with libgomp's
//   default waiting and 0.17–0.19 s with OMP_WAIT_POLICY=PASSIVE on this
//   2-core machine under load (bench/cpu_forward.cpp, interleaved).
// configureMathLibraries re-executes the tool once with what is missing; a
// value the user set is never overridden.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_EXECUTION_BLASSETUP_H
#define ATTNEDIT_RUNTIME_EXECUTION_BLASSETUP_H

namespace mlir::attnedit {

/// Call first thing in main(); returns only if no re-execution was needed
/// (or it failed, in which case the tool runs with the libraries' defaults).
void configureMathLibraries(char **argv);

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_EXECUTION_BLASSETUP_H
