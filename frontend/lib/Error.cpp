//===- Error.cpp - warnings of the libraries below the runtime -------------===//

#include "attnedit/Frontend/Error.h"

#include "llvm/Support/WithColor.h"

static llvm::unique_function<void(llvm::StringRef)> &handler() {
  static llvm::unique_function<void(llvm::StringRef)> current = [](llvm::StringRef msg) {
    llvm::WithColor::warning() << msg << "\n";
  };
  return current;
}

void mlir::attnedit::warn(const llvm::Twine &msg) { handler()(msg.str()); }

void mlir::attnedit::setWarningHandler(llvm::unique_function<void(llvm::StringRef)> h) {
  handler() = std::move(h);
}
