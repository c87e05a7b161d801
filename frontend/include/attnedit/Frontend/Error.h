//===- Error.h - the error values every attnedit library returns -*- C++ -*-===//
//
// LLVM is built without exceptions: failures travel as llvm::Error. These
// are the two shapes attnedit's messages take, defined once, and the one
// way the libraries below the runtime warn.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_FRONTEND_ERROR_H
#define ATTNEDIT_FRONTEND_ERROR_H

#include "llvm/ADT/FunctionExtras.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/Error.h"

namespace mlir::attnedit {

/// An error whose message is `msg`.
inline llvm::Error makeError(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg.str());
}

/// "where: msg", `where` naming the file, option, tensor or step at fault.
inline llvm::Error makeError(llvm::StringRef where, const llvm::Twine &msg) {
  return makeError(where + ": " + msg);
}

/// Reports a warning of the libraries below the runtime, which do not link
/// spdlog: the runtime's initLogging routes them into its log, so that they
/// carry the tool's name as every other line does (stderr until then).
void warn(const llvm::Twine &msg);

/// Where warn() sends its messages from now on.
void setWarningHandler(llvm::unique_function<void(llvm::StringRef)> handler);

} // namespace mlir::attnedit

#endif // ATTNEDIT_FRONTEND_ERROR_H
