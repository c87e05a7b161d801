//===- Logging.h - one logging setup for every attnedit tool --*- C++ -*-===//
#ifndef ATTNEDIT_RUNTIME_EXECUTION_LOGGING_H
#define ATTNEDIT_RUNTIME_EXECUTION_LOGGING_H

#include "llvm/Support/Error.h"

namespace mlir::attnedit {

/// Sends spdlog output to stderr as "<tool>: <level>: <message>".
void initLogging(llvm::StringRef toolName);

/// Logs `error` and returns the process exit code for a failed run (1).
int reportError(llvm::Error error);

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_EXECUTION_LOGGING_H
