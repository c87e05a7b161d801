//===- Limits.h - bounds on sizes a model may declare -----------*- C++ -*-===//
#ifndef ATTNEDIT_IR_LIMITS_H
#define ATTNEDIT_IR_LIMITS_H

#include <cstdint>

namespace mlir::attnedit {
/// The largest size or count a config.json field, a llama2.c header, a pass
/// option or an op attribute may give (hidden, intermediate and head sizes,
/// heads, vocabulary, context, latent ranks, windows): 2^24, far past
/// released models (vocabularies ~256K, contexts ~10M), small enough that
/// products of two stay in int64.
constexpr int64_t kMaxConfigSize = int64_t(1) << 24;

/// The distillation loss's bounds, for a recipe and a pass option alike: a
/// KL temperature in [kMinTemperature, kMaxTemperature] (at 1e-320 the
/// logits over it overflowed and the loss was NaN; at 1e308 it was 0), a
/// feature-loss weight in [0, kMaxFeatureWeight].
constexpr double kMinTemperature = 1e-3;
constexpr double kMaxTemperature = 100;
constexpr double kMaxFeatureWeight = 1000;
} // namespace mlir::attnedit

#endif // ATTNEDIT_IR_LIMITS_H
