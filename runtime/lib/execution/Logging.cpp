//===- Logging.cpp - one logging setup for every attnedit tool -------------===//

#include "attnedit/Runtime/Execution/Logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

void mlir::attnedit::initLogging(llvm::StringRef toolName) {
  auto logger = spdlog::stderr_color_st(toolName.str());
  logger->set_pattern("%n: %^%l%$: %v");
  spdlog::set_default_logger(logger);
}

int mlir::attnedit::reportError(llvm::Error error) {
  spdlog::error("{}", llvm::toString(std::move(error)));
  return 1;
}
