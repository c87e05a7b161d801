//===- Passes.td - attnedit transformations ----------------*- tablegen -*-===//
//
// File organization: one record per pass, grouped by stage of the conversion
// flow (structure, then editing, then training, then lowering), alphabetical
// within a group. Each pass lives in passes/lib/<Name>.cpp.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNEDIT_PASSES_TD
#define ATTNEDIT_PASSES_TD

include "mlir/Pass/PassBase.td"

//===----------------------------------------------------------------------===//
// Structure
//===----------------------------------------------------------------------===//

def DecomposePass : Pass<"attnedit-decompose", "::mlir::ModuleOp"> {
  let summary = "Expand composite attention ops into attnedit primitives";
  let description = [{
    Replaces every op implementing `DecomposableOpInterface`
    (`attnedit.attention`, `attnedit.mla`, `attnedit.gate_swa`) by its
    primitive expansion, for backends and
    analyses that only understand primitives.

    Before:
    ```mlir
    %o = attnedit.attention %x, %pos weights(%wq, %wk, %wv, %wo) {...}
    ```
    After: `linear` ×3, `reshape`, [`rms_norm`], `rope`, `transpose`,
    [`repeat_kv`], `matmul`, `scale`, `causal_mask`, `softmax`, `matmul`,
    `transpose`, `reshape`, `linear`.
  }];
}

def RaiseAttentionPass : Pass<"attnedit-raise-attention", "::mlir::ModuleOp"> {
  let summary = "Recognise primitive attention subgraphs as attnedit.attention";
  let description = [{
    Finds each causal attention subgraph built from primitives (projections,
    optional per-head q/k RMSNorm, RoPE, repeat-kv or a grouped matmul,
    scores, scale, causal or windowed mask, softmax over the key axis,
    weighted sum, output projection) and replaces it with one
    `attnedit.attention`. Accepts what the importer emits for Llama, Qwen2,
    Qwen3 and llama2.c and the equivalent spellings of other frontends (scale
    as an attribute or a multiply, mask applied or added, repeat-kv or a
    grouped matmul). Anything that is not exactly attention, e.g. a
    non-causal mask or a softmax over the wrong axis, is left as it is.
  }];
  let dependentDialects = ["::mlir::attnedit::AttnEditDialect"];
}

//===----------------------------------------------------------------------===//
// Editing
//===----------------------------------------------------------------------===//

// The edit's options, shared by --attnedit-convert.
defvar EditAttentionOptions = [
    Option<"target", "target", "std::string", /*default=*/"\"mla\"",
           "the new attention: mla or gate-swa (default mla)">,
    ListOption<"layers", "layers", "int64_t",
               "layers to edit (default: all)">,
    Option<"paramsOut", "params-out", "std::string", /*default=*/"",
           "safetensors file for the new parameters">,
    Option<"seed", "seed", "uint64_t", /*default=*/"0", "seed of random initialisation"
                                                     " (default 0)">,
    Option<"plan", "plan", "std::string", /*default=*/"\"\"",
           "JSON file giving each layer's edit (keep, swa with its window, mla with its "
           "rank); replaces target, layers and full-layers / full-every">,
    // MLA
    Option<"kvLoraRank", "kv-lora-rank", "int64_t", /*default=*/"512",
           "MLA latent rank (default 512)">,
    Option<"qLoraRank", "q-lora-rank", "int64_t", /*default=*/"0",
           "MLA query rank (0: full-rank q_proj) (default 0)">,
    Option<"qkRopeHeadDim", "qk-rope-head-dim", "int64_t", /*default=*/"64",
           "MLA decoupled RoPE dims (shared key) (default 64)">,
    Option<"ropeStride", "rope-stride", "int64_t", /*default=*/"0",
           "MLA: the student's RoPE pair j is the teacher's pair j·K (0: K = head_dim / "
           "qk-rope-head-dim, the kept frequencies spread over the teacher's range; 1: the "
           "highest ones); the student's rope_theta is theta^(K·qk-rope-head-dim/head_dim)"
           " (default 0)">,
    Option<"qkNopeHeadDim", "qk-nope-head-dim", "int64_t", /*default=*/"-1",
           "MLA position-free dims per head (-1: the teacher's head_dim) (default -1)">,
    Option<"vHeadDim", "v-head-dim", "int64_t", /*default=*/"-1",
           "MLA value dims per head (-1: the teacher's head_dim) (default -1)">,
    Option<"init", "init", "std::string", /*default=*/"\"svd\"",
           "MLA initialisation: svd, random or rorope (TransMLA's calibrated RoRoPE + "
           "BKV-PCA start with a latent the RMSNorm passes; needs activations) (default svd)">,
    Option<"activations", "activations", "std::string", /*default=*/"\"\"",
           "MLA init=svd or rorope: safetensors of each layer's attention-input covariance "
           "(attnedit-run calibrate-activations), for an activation-aware SVD">,
    // GateSWA
    Option<"window", "window", "int64_t", /*default=*/"128",
           "GateSWA sliding window W (query i sees keys i-W < j <= i) (default 128)">,
    ListOption<"fullLayers", "full-layers", "int64_t",
               "GateSWA layers that keep full attention">,
    Option<"fullEvery", "full-every", "int64_t", /*default=*/"0",
           "GateSWA: layer l keeps full attention when (l+1) % N == 0 (default 0)">,
    Option<"gate", "gate", "std::string", /*default=*/"\"headwise\"",
           "GateSWA output gate: headwise, elementwise or none (default headwise)">,
    Option<"sinks", "sinks", "bool", /*default=*/"false",
           "GateSWA learnable per-head sink logits">,
    Option<"sinkLogitsFile", "sink-logits", "std::string", /*default=*/"\"\"",
           "GateSWA: JSON of calibrated initial sink logits per layer and head "
           "(attnedit-run calibrate-sinks); default -12 everywhere">,
  ];

def EditAttentionPass : Pass<"attnedit-edit-attention", "::mlir::ModuleOp"> {
  let summary = "Rewrite attnedit.attention into MLA or GateSWA";
  let description = [{
    Replaces the `attnedit.attention` of the selected layers by
    `attnedit.mla` or `attnedit.gate_swa`. The new module's attention
    parameters are trainable, live in the parameter scope "student", are
    named as DeepSeek-V2/V3 name them, and are written to `params-out` (a new
    safetensors file recorded in the module's `attnedit.parameter_scopes`);
    the teacher's parameters are untouched and still referenced by name.
    Without `params-out` only the IR is rewritten (for analyses such as
    --attnedit-kv-report on a config-only model).

    MLA `init=svd` warm-starts from the teacher's weights (RoPE frequencies
    subsampled and decoupled into a shared key, joint low-rank factorisation
    of the NoPE keys and the values); `init=random` is the cold start;
    `init=rorope activations=FILE` is TransMLA's calibrated start (the shared
    RoPE key is the principal combination of the keys the calibration data
    produces, keys and values balanced by their output energy) with a latent
    whose rows are orthonormal in the unit-RMS input, so its RMSNorm is exact
    when the rank is the hidden size (MlaInit.h).
    GateSWA keeps the teacher's projections and starts with gate weights 0
    and o_proj doubled (σ(0) = 1/2), which reproduces the teacher exactly
    wherever the window covers the sequence.

    `plan=FILE` edits each layer as the file says (EditPlan.h): keep,
    swa (GateSWA with that window; gate and sinks from the options) or mla
    (that kv-lora-rank and qk-rope-head-dim; the other MLA options as given),
    so one module mixes attention kinds. The plan is recorded in the module
    attribute `attnedit.edit_plan`, which --attnedit-kv-report prints.
  }];
  let options = EditAttentionOptions;
  let dependentDialects = ["::mlir::attnedit::AttnEditDialect"];
}

def ConvertAttentionPass : Pass<"attnedit-convert", "::mlir::ModuleOp"> {
  let summary = "Raise attention, then edit it: the one-flag conversion";
  let description = [{
    Runs --attnedit-raise-attention, then --attnedit-edit-attention with
    these options (the same as the edit's), so that converting an imported
    model is one flag:

      attnedit-opt model.mlir --attnedit-convert="target=mla kv-lora-rank=64 params-out=s.safetensors"
  }];
  let options = EditAttentionOptions;
  let dependentDialects = ["::mlir::attnedit::AttnEditDialect"];
}

def PlanEditsPass : Pass<"attnedit-plan-edits", "::mlir::ModuleOp"> {
  let summary = "Choose each layer's edit under a KV budget from measured damage, and apply it";
  let description = [{
    Raises attention, chooses for every layer among keeping it and the
    candidates that `calibration` measured (GateSWA with a window, MLA of a
    rank), so that the bf16 KV cache at `context` tokens fits `kv-budget`
    (bytes per token, > 1, or a fraction of the module's, <= 1), writes the
    plan to `plan-out` and applies it with --attnedit-edit-attention and the
    options in `edit`:

      attnedit-opt model.mlir "--attnedit-plan-edits=kv-budget=0.25 context=512
          calibration=measured.json plan-out=plan.json
          edit={init=svd gate=headwise sinks=true params-out=s.safetensors}"

    Measuring damage means running the model on calibration data, which a
    pass cannot do: `calibration` is the JSON `attnedit-run plan-edits`
    writes (its "candidates": per layer and candidate the next-token KL with
    that layer alone edited). The choice is the planner's: of every plan
    within the budget, the one whose summed damage is least (an exact
    multiple-choice knapsack). Bytes are recomputed from the module
    at `context`, so one measurement serves every budget and context.
  }];
  let options = [
    Option<"kvBudget", "kv-budget", "double", /*default=*/"0.25",
           "bf16 KV bytes per token at `context` (> 1), or a fraction of the module's (<= 1)"
           " (default 0.25)">,
    Option<"context", "context", "int64_t", /*default=*/"512",
           "context length the budget holds at (default 512)">,
    Option<"calibration", "calibration", "std::string", /*default=*/"\"\"",
           "the damage measured on calibration data: attnedit-run plan-edits' JSON">,
    Option<"planOut", "plan-out", "std::string", /*default=*/"\"\"",
           "where the chosen plan (EditPlan JSON) is written">,
    Option<"edit", "edit", "std::string", /*default=*/"\"\"",
           "other --attnedit-edit-attention options (init, gate, sinks, params-out, ...)">,
  ];
  let dependentDialects = ["::mlir::attnedit::AttnEditDialect"];
}

//===----------------------------------------------------------------------===//
// Training
//===----------------------------------------------------------------------===//

def BuildDistillPass : Pass<"attnedit-build-distill", "::mlir::ModuleOp"> {
  let summary = "Build the distillation objective @train_step(tokens, positions) -> loss";
  let description = [{
    Runs on an edited (student) module and reads the raised teacher module
    from `teacher`. Both `@forward`s must have their attention as composite
    ops, layer for layer.

    - `stage=layerwise`: each edited student attention gets the teacher's own
      input hidden state for its layer (teacher forcing) and its output is
      matched to the teacher attention's output by MSE; the loss is the mean
      over edited layers. Layers are independent, so one step trains all.
    - `stage=model`: the whole student runs; loss = KL(teacher ‖ student)
      over next-token distributions at `temperature`, plus `feature-weight`
      times the mean over `feature-layers` of 1 − cos between teacher and
      student hidden states entering those layers.

      `layers=i,j` keeps only those edited layers' terms (the teacher
      forward is cut after the last of them): the layer-parallel share of one
      process; the shares' losses sum to the whole step's loss and each
      layer's gradient is the one the whole step computes.
    - `stage=lm`: no teacher; `@train_step(tokens, positions, targets)` is the
      mean next-token cross entropy of `@forward` with every parameter
      trainable, for pretraining a model (a teacher) from scratch.

    The teacher is frozen (its parameters are not trainable). `train=all`
    (stage=model) also trains the student's copies of the non-attention
    parameters, in scope "student" and marked `attnedit.teacher_copy` (a
    recipe's `lr_rest` is their rate); the trainer starts them from the
    teacher's values. Follow with --attnedit-autodiff=func=train_step.
  }];
  let options = [
    Option<"teacher", "teacher", "std::string", /*default=*/"",
           "the teacher module (.mlir with raised attention)">,
    Option<"stage", "stage", "std::string", /*default=*/"\"layerwise\"",
           "layerwise (per-layer MSE), model (KL [+ cosine features]) or lm (default layerwise)">,
    Option<"temperature", "temperature", "double", /*default=*/"1.0",
           "softmax temperature of the KL (default 1.0)">,
    ListOption<"featureLayers", "feature-layers", "int64_t",
               "layers whose input hidden states are matched by cosine">,
    Option<"featureWeight", "feature-weight", "double", /*default=*/"0.0",
           "weight λ of the cosine feature loss (default 0.0)">,
    Option<"train", "train", "std::string", /*default=*/"\"attention\"",
           "which student parameters train: attention or all (default attention)">,
    ListOption<"layers", "layers", "int64_t",
               "stage=layerwise: only these edited layers (layer-parallel training; "
               "the loss still divides by the count of every edited layer)">,
  ];
  let dependentDialects = ["::mlir::attnedit::AttnEditDialect"];
}

def AutodiffPass : Pass<"attnedit-autodiff", "::mlir::ModuleOp"> {
  let summary = "Reverse-mode gradient of a scalar function";
  let description = [{
    For `func.func @<func>` returning one single-element f32 tensor (a loss),
    adds `@<func>_grad` with the same arguments returning the loss followed by
    its gradient with respect to every trainable `attnedit.param` (in order of
    first appearance; uses of one parameter are summed) and every argument
    marked `attnedit.wrt`. The function attribute `attnedit.gradients` names
    them ("scope::name" or "name" for parameters, "arg<N>" for arguments).
    Composite ops are differentiated through their decomposition; every
    primitive on a path from a differentiated value to the loss must
    implement DifferentiableOpInterface. Values that do not depend on a
    differentiated value (a frozen teacher) get no backward ops.
  }];
  let options = [
    Option<"funcName", "func", "std::string", /*default=*/"\"loss\"",
           "the function to differentiate (default loss)">,
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::attnedit::AttnEditDialect"];
}

//===----------------------------------------------------------------------===//
// Inference
//===----------------------------------------------------------------------===//

def BuildDecodePass : Pass<"attnedit-build-decode", "::mlir::ModuleOp"> {
  let summary = "Build @prefill and @decode with an explicit paged KV cache from @forward";
  let description = [{
    Adds two functions beside `@forward(tokens, positions) -> logits` (whose
    attention must be composite ops: run --attnedit-raise-attention first on
    an imported model):

      @prefill(tokens [T], positions [T], tables [1, M]..., pools...)
          -> (logits [T, V], pools...)     a prompt chunk of one sequence
      @decode(tokens [B], positions [B], tables [B, M]..., pools...)
          -> (logits [B, V], pools...)     one new token for each of B sequences

    Each attention op becomes its projections, `attnedit.cache_write` of
    what decoding keeps per token, and `attnedit.paged_attention` over the
    cache, so both functions read every earlier token from the pools and
    write their own tokens there (vLLM's paged layout, slot = block ·
    `block-size` + offset):

      - attention (MHA/GQA): K and V per KV head, two pools of Hkv·D;
      - mla: one pool of [c_kv (kv_lora_rank); k_pe (qk_rope_head_dim)]
        (DeepSeek-V2 §2.1.2), attended in the absorbed form: q_nope·W_UK
        scores against c_kv, the output goes through W_UV, with W_UK and W_UV
        the per-head rows of kv_b_proj;
      - gate_swa / windowed attention with window W: K and V as above in a
        ring of ceil((W + max-chunk - 2) / block-size) + 1 blocks per
        sequence (the window plus one prompt chunk, llama.cpp's
        n_swa + n_ubatch), reused as the window moves; window 0 keeps all.

    One block table argument per cache group (all full layers; each window
    size), marked `attnedit.block_table = {window, ring_blocks}`; one pool
    argument per cached tensor, marked `attnedit.kv_cache = {layer, part,
    table}`. The functions record `attnedit.kv_block_size` and
    `attnedit.max_chunk`: a prompt is prefilled in chunks of at most that
    many tokens.
  }];
  let options = [
    Option<"blockSize", "block-size", "int64_t", /*default=*/"16",
           "tokens per cache block (default 16)">,
    Option<"maxChunk", "max-chunk", "int64_t", /*default=*/"64",
           "most tokens one @prefill call takes (sizes the sliding-window rings) (default 64)">,
  ];
  let dependentDialects = ["::mlir::attnedit::AttnEditDialect"];
}

//===----------------------------------------------------------------------===//
// Shapes
//===----------------------------------------------------------------------===//

def StaticTokensPass : Pass<"attnedit-static-tokens", "::mlir::ModuleOp"> {
  let summary = "Give every dynamic size of the module's functions a fixed token count";
  let description = [{
    An imported model's token dimension is dynamic (`tensor<?x...>`), and
    lowerings that build kernels for fixed shapes (the Ascend pipeline, which
    runs this first when given `tokens=`) leave such ops alone. This pass sets
    every dynamic size of every function's arguments, op results and results
    to `tokens`, except a reshape's, which it computes from its input's
    element count, then verifies the function: one whose dynamic sizes were
    not all the token count (two sequences concatenated, say) fails that
    check, and the pass with it, naming the function. The KV-cache steps of
    --attnedit-build-decode (arguments with a block table), whose sizes are
    sequences, blocks and slots, are left as they are, with a warning. A
    `tokens` past the module's `attnedit.max_positions` is warned about.
  }];
  let options = [
    Option<"tokens", "tokens", "int64_t", /*default=*/"0",
           "the token count (required, at least 1)">,
  ];
}

//===----------------------------------------------------------------------===//
// Analysis
//===----------------------------------------------------------------------===//

def KvReportPass : Pass<"attnedit-kv-report", "::mlir::ModuleOp"> {
  let summary = "Report the KV-cache bytes per token and at a context length";
  let description = [{
    For every attention-like op (AttentionLikeOpInterface), prints the layer,
    its kind, the values cached per token, how many tokens the cache holds
    at `context`, and the bytes per token and at `context` for `dtype`; then
    the totals, as a table and as JSON, to stderr (stdout stays the module
    the next tool reads) and the JSON also to `json-out`. The IR is
    unchanged; the layers are @forward's when the module has one. Run
    --attnedit-raise-attention first on an imported model.
  }];
  let options = [
    Option<"context", "context", "int64_t", /*default=*/"32768", "context length N"
                                                              " (default 32768)">,
    Option<"dtype", "dtype", "std::string", /*default=*/"\"bf16\"",
           "cache element type: f32, f16, bf16 or f8 (default bf16)">,
    Option<"jsonOut", "json-out", "std::string", /*default=*/"",
           "also write the JSON report to this file">,
  ];
}

#endif // ATTNEDIT_PASSES_TD
