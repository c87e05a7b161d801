//===- MappedFileFaults.h - a clear error for a mapped file that shrank -*- C++ -*-===//
//
// Private to frontend/lib. Weight files are memory-mapped and read in place;
// one truncated by another process while a job runs makes the next read of
// a page past its new end raise SIGBUS, which killed the job without a word.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_FRONTEND_LIB_MAPPEDFILEFAULTS_H
#define ATTNEDIT_FRONTEND_LIB_MAPPEDFILEFAULTS_H

#include "llvm/ADT/StringRef.h"

#include <cstddef>

namespace mlir::attnedit {

/// Until unwatchMapping(begin), a SIGBUS at an address in [begin, begin +
/// size) ends the process with an error naming `path` (exit status 1). A
/// fault elsewhere goes to the handler that was installed before.
void watchMapping(const void *begin, size_t size, llvm::StringRef path);
void unwatchMapping(const void *begin);

} // namespace mlir::attnedit

#endif // ATTNEDIT_FRONTEND_LIB_MAPPEDFILEFAULTS_H
