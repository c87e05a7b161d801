//===- ToolVersion.h - what --version prints for every attnedit tool -*- C++ -*-===//
#ifndef ATTNEDIT_TOOLS_TOOLVERSION_H
#define ATTNEDIT_TOOLS_TOOLVERSION_H

#include "llvm/Config/llvm-config.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::attnedit {

/// Makes --version name the tool and attnedit's version (from CMake's
/// project()) before the LLVM it is built on; LLVM's printer named only
/// LLVM.
inline void setToolVersionPrinter(const char *tool) {
  static const char *name = tool;
  llvm::cl::SetVersionPrinter([](llvm::raw_ostream &os) {
    os << name << " (attnedit " ATTNEDIT_VERSION "), built on LLVM/MLIR " LLVM_VERSION_STRING
       << "\n";
  });
}

} // namespace mlir::attnedit

#endif // ATTNEDIT_TOOLS_TOOLVERSION_H
