//===- Error.h - the error values every attnedit library returns -*- C++ -*-===//
//
// LLVM is built without exceptions: failures travel as llvm::Error. These
// are the two shapes attnedit's messages take, defined once.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_FRONTEND_ERROR_H
#define ATTNEDIT_FRONTEND_ERROR_H

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

} // namespace mlir::attnedit

#endif // ATTNEDIT_FRONTEND_ERROR_H
