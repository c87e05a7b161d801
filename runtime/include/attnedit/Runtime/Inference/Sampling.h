//===- Sampling.h - a file of texts sampled from a model -------*- C++ -*-===//
//
// `attnedit-run sample`: N independent requests to one continuous-batching
// Scheduler, written as one file of uint16 ids, JSON lines or text (data to
// distil the model on). The job owns its file through a lock beside it
// (FILE.lock), saves its finished samples to FILE.partial as it goes, and
// a resumed run continues from there.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_INFERENCE_SAMPLING_H
#define ATTNEDIT_RUNTIME_INFERENCE_SAMPLING_H

#include "attnedit/Runtime/Inference/Generation.h"

#include "llvm/Support/Error.h"

#include <string>

namespace mlir::attnedit {

class Decoder;
class Model;

struct SampleJobOptions {
  /// .bin: uint16 ids, BOS (or EOS, without one) before each sample; .jsonl:
  /// a {"text": ...} line per sample; anything else: the samples' text, each
  /// ended by a newline.
  std::string out;
  int64_t count = 100;
  /// Finished samples between two saves of FILE.partial.
  int64_t checkpointEvery = 1000;
  /// Sequences decoded together; it changes only the logits' rounding.
  int64_t maxBatch = 32;
  /// Continue from FILE.partial; without it, one left there is an error.
  bool resume = false;
  /// Sample i draws from its own stream, seed * 1000003 + i.
  GenerationOptions sampling;
  /// The executor's name, part of what a checkpoint must match.
  std::string backend;
};

/// Writes options.count samples of `model`, each from BOS, decoded by
/// `decoder` (the model's), to options.out.
llvm::Error writeSamples(Model &model, Decoder &decoder, const SampleJobOptions &options);

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_INFERENCE_SAMPLING_H
