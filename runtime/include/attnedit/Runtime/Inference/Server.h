//===- Server.h - an OpenAI-compatible HTTP server -------------*- C++ -*-===//
//
// `attnedit-run serve`: /v1/completions and /v1/chat/completions (JSON or
// server-sent events), /v1/models, /health and Prometheus /metrics over
// cpp-httplib, every request going through one continuous-batching
// Scheduler. Errors are OpenAI's {"error": {message, type, param, code}}.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_INFERENCE_SERVER_H
#define ATTNEDIT_RUNTIME_INFERENCE_SERVER_H

#include "attnedit/Runtime/Inference/Decoder.h"

#include <string>

namespace mlir::attnedit {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;          // 0 = any free port
  std::string portFile;     // written with the bound port once listening; removed at the end
  std::string modelName;    // the id clients must ask for
  int64_t maxBatch = 32;    // sequences decoded together
  int64_t prefillBudget = 256; // prompt tokens prefilled per step
  /// HTTP worker threads: each open connection holds one (cpp-httplib
  /// serves a connection per thread) until it closes or idles 5 s.
  int threads = 64;
  int64_t shutdownGrace = 5; // seconds running requests get to finish on SIGINT/SIGTERM
};

/// Serves `decoder`'s model until SIGINT or SIGTERM. The first signal stops
/// accepting connections, lets running requests finish for
/// `shutdownGrace` seconds, then ends the rest (503, or an error event and
/// [DONE] in a stream); a second one exits at once with 128 + its number.
llvm::Error serve(Decoder &decoder, const ServerOptions &options);

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_INFERENCE_SERVER_H
