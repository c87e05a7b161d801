//===- InputFile.h - the one way attnedit reads a file it is given -*- C++ -*-===//
//
// Every file a user names (models, weights, configs, recipes, tokenizers,
// texts) is read through readInputFile, which bounds what a pipe or device
// may hand over.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_FRONTEND_INPUTFILE_H
#define ATTNEDIT_FRONTEND_INPUTFILE_H

#include "llvm/ADT/Twine.h"
#include "llvm/Support/ErrorOr.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cstdint>
#include <memory>

namespace mlir::attnedit {

/// The most a file that is not a regular one gives before it is refused.
inline constexpr uint64_t kMaxStreamBytes = 1ull << 30;

/// `path` whole, as llvm::MemoryBuffer::getFile reads it. A pipe or a device
/// (a process substitution, or a link to /dev/zero) is read to its end, which
/// may never come: past kMaxStreamBytes it is refused (File too large), where
/// getFile allocated until the process died.
llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>>
readInputFile(const llvm::Twine &path, bool isText = false, bool requiresNullTerminator = true,
              bool isVolatile = false);

} // namespace mlir::attnedit

#endif // ATTNEDIT_FRONTEND_INPUTFILE_H
