//===- Logging.cpp - one logging setup for every attnedit tool -------------===//

#include "attnedit/Runtime/Execution/Logging.h"
#include "attnedit/Frontend/Error.h"

#include <spdlog/cfg/env.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

void mlir::attnedit::initLogging(llvm::StringRef toolName) {
  auto logger = spdlog::stderr_color_st(toolName.str());
  logger->set_pattern("%n: %^%l%$: %v");
  spdlog::set_default_logger(logger);
  // SPDLOG_LEVEL=debug shows, among others, each compile's time and arena.
  spdlog::cfg::load_env_levels();
  setWarningHandler([](llvm::StringRef msg) { spdlog::warn("{}", msg.str()); });
}

int mlir::attnedit::reportError(llvm::Error error) {
  spdlog::error("{}", llvm::toString(std::move(error)));
  return 1;
}
