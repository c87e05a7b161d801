//===- Calibration.h - edit starts measured on the teacher ------*- C++ -*-===//
//
// Statistics of the teacher's attention on calibration tokens that an edit
// starts from. A pass cannot run the model, so the runtime measures and
// writes a file the edit reads (like plan-edits and plan=).
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_TRAINING_CALIBRATION_H
#define ATTNEDIT_RUNTIME_TRAINING_CALIBRATION_H

#include "attnedit/Runtime/Execution/Model.h"

#include "llvm/Support/JSON.h"

namespace mlir::attnedit {

/// GateSWA sink logits with which, per layer and head, the sink takes the
/// share of attention that the teacher gives to keys outside a `window`-token
/// window, on average over the calibration queries that have such keys:
/// s solves mean_i σ(s - log Σ_{j in window(i)} exp(a_ij)) = mean_i m_i,
/// with a_ij the teacher's scaled scores and m_i its mass outside the window.
/// The window then only removes what the teacher attended to outside it,
/// instead of renormalising the rest. `tokens` are run in chunks of
/// `chunk` positions (BOS first when the model has one). The result is what
/// --attnedit-edit-attention=sink-logits=FILE reads:
///   {"window": W, "objective": ..., "layers": [[s_0, ..., s_H-1], ...],
///    "outside_mass": [[m_0, ...], ...], "queries": N}
/// With SinkObjective::OutputError, s instead minimises the teacher-forced
/// error of the head's output over every calibration query (also those
/// with nothing outside the window, from which the sink only takes mass):
/// Σ_i |σ(log Z_W,i - s)·w_i - t_i|², w_i the window-renormalised output,
/// t_i the teacher's (the gate at its start, 1, and o_proj left out).
enum class SinkObjective { OutsideMass, OutputError };
llvm::Expected<llvm::json::Value>
calibrateSinkLogits(Model &teacher, llvm::ArrayRef<int32_t> tokens, int64_t window,
                    int64_t chunk, SinkObjective objective = SinkObjective::OutsideMass);

/// Per attention layer, E[x·xᵀ] ([hidden, hidden], row-major) of the
/// teacher's attention input x over `tokens` (run in chunks of `chunk`), for
/// the activation-aware MLA warm start (--attnedit-edit-attention
/// activations=FILE; the file names them model.layers.L.self_attn.input_covariance).
llvm::Expected<std::vector<std::vector<float>>>
attentionInputCovariance(Model &teacher, llvm::ArrayRef<int32_t> tokens, int64_t chunk);

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_TRAINING_CALIBRATION_H
