//===- AttnEditOps.td - attnedit operations ----------------*- tablegen -*-===//
//
// Primitive tensor ops of a Llama/Qwen decoder, parameter references, and the
// composite attention op. Shapes follow one convention throughout: a sequence
// is [T, ...] with tokens on the leading axis; attention heads are [T, H, D]
// before the score matmul and [H, T, D] inside it.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNEDIT_OPS_TD
#define ATTNEDIT_OPS_TD

include "attnedit/IR/AttnEditBase.td"
include "attnedit/IR/AttnEditInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

def AttnEdit_Activation : RankedTensorOf<[F32]>;
def AttnEdit_Storage : RankedTensorOf<[F32, F16, BF16]>;
def AttnEdit_TokenIds : 1DTensorOf<[I32]>;

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

def AttnEdit_ParamOp : AttnEdit_Op<"param", [Pure]> {
  let summary = "reference to a named, external parameter";
  let description = [{
    Names a tensor held by the parameter store (as IREE's
    `#stream.parameter.named`): weights are never inlined into the IR. The
    result type is the stored shape and element type; `trainable` marks the
    parameters that distillation updates. A `scope` names the parameter
    files the name resolves in (IREE's `"scope"::"key"`): unscoped names
    resolve in the module's `attnedit.parameter_files`, scoped ones in
    `attnedit.parameter_scopes[scope]`, so an edited attention's own copy of
    `o_proj.weight` never shadows the teacher's.

    ```mlir
    %w = attnedit.param "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xbf16>
    %g = attnedit.param "model.layers.0.self_attn.o_proj.weight" in "student" trainable : tensor<64x64xf32>
    ```
  }];
  let arguments = (ins StrAttr:$name, OptionalAttr<StrAttr>:$scope, UnitAttr:$trainable);
  let results = (outs AttnEdit_Storage:$result);
  let assemblyFormat = [{
    $name (`in` $scope^)? (`trainable` $trainable^)? attr-dict `:` type($result)
  }];
  let hasVerifier = 1;
}

def AttnEdit_ConvertOp : AttnEdit_Op<"convert", [Pure, DeclareOpInterfaceMethods<AttnEdit_DifferentiableOpInterface>]> {
  let summary = "element type conversion (storage type to f32 activations)";
  let arguments = (ins AttnEdit_Storage:$input);
  let results = (outs AttnEdit_Storage:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Layers
//===----------------------------------------------------------------------===//

def AttnEdit_EmbeddingOp : AttnEdit_Op<"embedding", [Pure, DeclareOpInterfaceMethods<AttnEdit_DifferentiableOpInterface>]> {
  let summary = "row gather: table[ids]";
  let description = [{
    `table` is [V, D], `ids` is [T]; the result is [T, D]. Ids outside
    [0, V) are a runtime error, not undefined behaviour.
  }];
  let arguments = (ins AttnEdit_Activation:$table, AttnEdit_TokenIds:$ids);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$table `[` $ids `]` attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def AttnEdit_LinearOp : AttnEdit_Op<"linear", [Pure, DeclareOpInterfaceMethods<AttnEdit_DifferentiableOpInterface>]> {
  let summary = "x · Wᵀ (+ b), as torch.nn.Linear";
  let description = [{
    `input` is [..., K], `weight` is [N, K] (the Hugging Face layout), the
    optional `bias` is [N]; the result is [..., N].
  }];
  let arguments = (ins AttnEdit_Activation:$input, AttnEdit_Activation:$weight,
                       Optional<AttnEdit_Activation>:$bias);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def AttnEdit_RmsNormOp : AttnEdit_Op<"rms_norm", [Pure, DeclareOpInterfaceMethods<AttnEdit_DifferentiableOpInterface>]> {
  let summary = "x / sqrt(mean(x², last axis) + eps) · w";
  let arguments = (ins AttnEdit_Activation:$input, AttnEdit_Activation:$weight,
                       F64Attr:$eps);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def AttnEdit_RopeOp : AttnEdit_Op<"rope", [Pure, DeclareOpInterfaceMethods<AttnEdit_DifferentiableOpInterface>]> {
  let summary = "rotary position embedding";
  let description = [{
    Rotates the first `rotary_dim` features of each head of `input` [T, H, D]
    by angle positions[t] · inv_freq[i], inv_freq[i] = theta^(-2i/rotary_dim);
    features past `rotary_dim` pass through (partial rotary). `style` picks
    the pairing: `rotate_half` pairs (i, i + rotary_dim/2) as HF's
    `rotate_half`; `interleaved` pairs (2i, 2i+1) as llama2.c. When present,
    `llama3_scaling` = [factor, low_freq_factor, high_freq_factor,
    original_max_position_embeddings] rescales inv_freq as Llama 3.1 does.
    `inverse` rotates by the opposite angles: the transpose of the rotation,
    which is its own VJP.
  }];
  let arguments = (ins AttnEdit_Activation:$input, AttnEdit_TokenIds:$positions,
                       F64Attr:$theta, I64Attr:$rotary_dim,
                       AttnEdit_RopeStyleAttr:$style,
                       OptionalAttr<DenseF64ArrayAttr>:$llama3_scaling,
                       UnitAttr:$inverse);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$input `,` $positions attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def AttnEdit_MatmulOp : AttnEdit_Op<"matmul", [Pure, DeclareOpInterfaceMethods<AttnEdit_DifferentiableOpInterface>]> {
  let summary = "batched matrix product [B..., M, K] x [B..., K, N]";
  let arguments = (ins AttnEdit_Activation:$lhs, AttnEdit_Activation:$rhs);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def AttnEdit_SoftmaxOp : AttnEdit_Op<"softmax", [Pure, DeclareOpInterfaceMethods<AttnEdit_DifferentiableOpInterface>,
    AllTypesMatch<["input", "result"]>]> {
  let summary = "numerically stable softmax along one axis, with optional sinks";
  let description = [{
    With `sinks` [H] (attention sinks, as gpt-oss), `input` is scores
    [H, Tq, Tk] normalised along the last axis and each head's denominator
    also counts exp(sinks[h]): a virtual key with a raw (unscaled) logit and
    a zero value, so a head may attend to nothing.
  }];
  let arguments = (ins AttnEdit_Activation:$input, Optional<AttnEdit_Activation>:$sinks,
                       I64Attr:$axis);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = [{
    $input (`sinks` `(` $sinks^ `:` type($sinks) `)`)? attr-dict `:` type($input)
  }];
  let hasVerifier = 1;
}

def AttnEdit_CausalMaskOp : AttnEdit_Op<"causal_mask", [Pure, DeclareOpInterfaceMethods<AttnEdit_DifferentiableOpInterface>, SameOperandsAndResultType]> {
  let summary = "sets future (and out-of-window) scores to -inf";
  let description = [{
    `input` is [..., Tq, Tk] with the queries being the last Tq of the Tk key
    positions. Query i (absolute position Tk - Tq + i) keeps key j when
    j <= pos(i) and, if `window` > 0, pos(i) - j < window; other entries
    become -inf, so a following softmax gives them zero weight, or 0 with
    `zero_fill` (the VJP: masked entries get no gradient).

    `segments` > 1 packs that many sequences of equal length into the rows
    (Tq = Tk, a multiple of `segments`), as a training step runs a batch in
    one call: a query also drops the keys of the sequences before its own,
    so each sequence computes what it would alone.
  }];
  let arguments = (ins AttnEdit_Activation:$input,
                       DefaultValuedAttr<I64Attr, "0">:$window, UnitAttr:$zero_fill,
                       DefaultValuedAttr<I64Attr, "1">:$segments);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// Whether `segments` packed sequences fit `queries` x `keys` scores:
    /// the verifier checks static shapes, the executors each call's.
    static bool segmentsFit(int64_t segments, int64_t queries, int64_t keys) {
      return segments <= 1 || (queries == keys && keys % segments == 0);
    }
  }];
}

def AttnEdit_RepeatKvOp : AttnEdit_Op<"repeat_kv", [Pure, DeclareOpInterfaceMethods<AttnEdit_DifferentiableOpInterface>]> {
  let summary = "repeats each KV head for grouped-query attention";
  let description = [{
    [Hkv, T, D] -> [Hkv · repeats, T, D]; head h of the result is head
    h / repeats of the input, as HF's `repeat_kv`.
  }];
  let arguments = (ins AttnEdit_Activation:$input, I64Attr:$repeats);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

class AttnEdit_UnaryOp<string mnemonic, string summaryText>
    : AttnEdit_Op<mnemonic, [Pure, SameOperandsAndResultType,
        DeclareOpInterfaceMethods<AttnEdit_DifferentiableOpInterface>]> {
  let summary = summaryText;
  let arguments = (ins AttnEdit_Activation:$input);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

class AttnEdit_BinaryOp<string mnemonic, string summaryText>
    : AttnEdit_Op<mnemonic, [Pure, SameOperandsAndResultType,
        DeclareOpInterfaceMethods<AttnEdit_DifferentiableOpInterface>]> {
  let summary = summaryText;
  let arguments = (ins AttnEdit_Activation:$lhs, AttnEdit_Activation:$rhs);
  let results = (outs AttnEdit_Activation:$result);
  // `: T`, or `: (L, R) -> T` when the types are compatible but not equal.
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` "
                       "custom<BinaryTypes>(type($lhs), type($rhs), type($result))";
}

def AttnEdit_SiluOp : AttnEdit_UnaryOp<"silu", "x · sigmoid(x)">;
def AttnEdit_SigmoidOp : AttnEdit_UnaryOp<"sigmoid", "1 / (1 + exp(-x))">;
def AttnEdit_AddOp : AttnEdit_BinaryOp<"add", "elementwise sum">;
def AttnEdit_MulOp : AttnEdit_BinaryOp<"mul", "elementwise product">;

def AttnEdit_ScaleOp : AttnEdit_Op<"scale", [Pure, DeclareOpInterfaceMethods<AttnEdit_DifferentiableOpInterface>, SameOperandsAndResultType]> {
  let summary = "multiplication by a constant";
  let arguments = (ins AttnEdit_Activation:$input, F64Attr:$factor);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

//===----------------------------------------------------------------------===//
// Shape
//===----------------------------------------------------------------------===//

def AttnEdit_ReshapeOp : AttnEdit_Op<"reshape", [Pure, DeclareOpInterfaceMethods<AttnEdit_DifferentiableOpInterface>]> {
  let summary = "row-major reshape; at most one dynamic result dimension";
  let arguments = (ins AttnEdit_Activation:$input);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def AttnEdit_BroadcastOp : AttnEdit_Op<"broadcast", [Pure, DeclareOpInterfaceMethods<AttnEdit_DifferentiableOpInterface>]> {
  let summary = "repeats size-1 dimensions up to the result shape";
  let description = [{
    Same rank in and out; every input dimension equals the result's or is 1.
    Used for a per-head gate over head features and MLA's shared RoPE key.
  }];
  let arguments = (ins AttnEdit_Activation:$input);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def AttnEdit_TransposeOp : AttnEdit_Op<"transpose", [Pure, DeclareOpInterfaceMethods<AttnEdit_DifferentiableOpInterface>]> {
  let summary = "axis permutation: result dim i is input dim permutation[i]";
  let arguments = (ins AttnEdit_Activation:$input, DenseI64ArrayAttr:$permutation);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def AttnEdit_SliceOp : AttnEdit_Op<"slice", [Pure, DeclareOpInterfaceMethods<AttnEdit_DifferentiableOpInterface>]> {
  let summary = "input[..., offset : offset + size, ...] along one axis";
  let arguments = (ins AttnEdit_Activation:$input, I64Attr:$axis, I64Attr:$offset,
                       I64Attr:$size);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def AttnEdit_ConcatOp : AttnEdit_Op<"concat", [Pure, DeclareOpInterfaceMethods<AttnEdit_DifferentiableOpInterface>]> {
  let summary = "concatenation along one axis";
  let arguments = (ins Variadic<AttnEdit_Activation>:$inputs, I64Attr:$axis);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$inputs attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Reductions and gradients
//
// The backward ops the VJP rules (DifferentiableOpInterface) emit, each
// with a reference kernel, so a gradient graph is ordinary attnedit IR.
//===----------------------------------------------------------------------===//

def AttnEdit_ReduceSumOp : AttnEdit_Op<"reduce_sum", [Pure,
    DeclareOpInterfaceMethods<AttnEdit_DifferentiableOpInterface>]> {
  let summary = "sum along one axis, keeping it as size 1 or dropping it";
  let arguments = (ins AttnEdit_Activation:$input, I64Attr:$axis, UnitAttr:$keep_dims);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def AttnEdit_PadOp : AttnEdit_Op<"pad", [Pure]> {
  let summary = "zeros before and after the input along one axis (slice's VJP)";
  let arguments = (ins AttnEdit_Activation:$input, I64Attr:$axis, I64Attr:$before,
                       I64Attr:$after);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def AttnEdit_EmbeddingGradOp : AttnEdit_Op<"embedding_grad", [Pure]> {
  let summary = "scatter-add of row gradients into the table: embedding's VJP";
  let description = [{
    `grad` [T, D] and `ids` [T] give a [V, D] result whose row v is the sum
    of grad[t] over the t with ids[t] = v.
  }];
  let arguments = (ins AttnEdit_Activation:$grad, AttnEdit_TokenIds:$ids);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$grad `[` $ids `]` attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def AttnEdit_RmsNormGradOp : AttnEdit_Op<"rms_norm_grad", [Pure,
    AllTypesMatch<["input", "grad", "result"]>]> {
  let summary = "gradient of rms_norm with respect to its input";
  let arguments = (ins AttnEdit_Activation:$input, AttnEdit_Activation:$weight,
                       AttnEdit_Activation:$grad, F64Attr:$eps);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$input `,` $weight `,` $grad attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def AttnEdit_RmsNormWeightGradOp : AttnEdit_Op<"rms_norm_weight_grad", [Pure,
    AllTypesMatch<["input", "grad"]>]> {
  let summary = "gradient of rms_norm with respect to its weight";
  let description = [{ Σ over all rows of grad · input / rms(input): [D]. }];
  let arguments = (ins AttnEdit_Activation:$input, AttnEdit_Activation:$grad, F64Attr:$eps);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$input `,` $grad attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def AttnEdit_SoftmaxGradOp : AttnEdit_Op<"softmax_grad", [Pure, SameOperandsAndResultType]> {
  let summary = "y ⊙ (g − Σ g⊙y) along the axis, from the softmax output y";
  let description = [{
    The VJP of softmax (with or without sinks: the sink's virtual column has
    no value, so the scores' gradient has the same form).
  }];
  let arguments = (ins AttnEdit_Activation:$output, AttnEdit_Activation:$grad, I64Attr:$axis);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$output `,` $grad attr-dict `:` type($output)";
  let hasVerifier = 1;
}

def AttnEdit_SinkGradOp : AttnEdit_Op<"sink_grad", [Pure, AllTypesMatch<["output", "grad"]>]> {
  let summary = "gradient of a softmax's sink logits";
  let description = [{
    For probabilities `output` [H, Tq, Tk] of a softmax with sinks and their
    gradient: −Σ over head h's rows of p_sink · Σ_j g_j·p_j, with
    p_sink = 1 − Σ_j p_j. Result [H].
  }];
  let arguments = (ins AttnEdit_Activation:$output, AttnEdit_Activation:$grad);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$output `,` $grad attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def AttnEdit_SiluGradOp : AttnEdit_Op<"silu_grad", [Pure, SameOperandsAndResultType]> {
  let summary = "g · (σ(x) + x·σ(x)·(1 − σ(x))): silu's VJP";
  let arguments = (ins AttnEdit_Activation:$input, AttnEdit_Activation:$grad);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$input `,` $grad attr-dict `:` type($input)";
}

def AttnEdit_SigmoidGradOp : AttnEdit_Op<"sigmoid_grad", [Pure, SameOperandsAndResultType]> {
  let summary = "g · y · (1 − y) from the sigmoid output y";
  let arguments = (ins AttnEdit_Activation:$output, AttnEdit_Activation:$grad);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$output `,` $grad attr-dict `:` type($output)";
}

//===----------------------------------------------------------------------===//
// Losses
//
// Each returns a scalar tensor<f32>, averaged over rows (all but the last
// axis) so that a loss does not grow with the batch or sequence length.
//===----------------------------------------------------------------------===//

def AttnEdit_Scalar : TensorRankOf<[F32], [0]>,
    BuildableType<"::mlir::RankedTensorType::get({}, $_builder.getF32Type())">;

def AttnEdit_MseLossOp : AttnEdit_Op<"mse_loss", [Pure, AllTypesMatch<["input", "target"]>,
    DeclareOpInterfaceMethods<AttnEdit_DifferentiableOpInterface>]> {
  let summary = "mean over all elements of (input − target)²";
  let arguments = (ins AttnEdit_Activation:$input, AttnEdit_Activation:$target);
  let results = (outs AttnEdit_Scalar:$result);
  let assemblyFormat = "$input `,` $target attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def AttnEdit_KlLossOp : AttnEdit_Op<"kl_loss", [Pure, AllTypesMatch<["teacher", "student"]>,
    DeclareOpInterfaceMethods<AttnEdit_DifferentiableOpInterface>]> {
  let summary = "mean over rows of KL(softmax(teacher/τ) ‖ softmax(student/τ))";
  let description = [{
    Logits [..., V]. Only the student side is differentiated: the teacher
    is frozen by definition of distillation.
  }];
  let arguments = (ins AttnEdit_Activation:$teacher, AttnEdit_Activation:$student,
                       DefaultValuedAttr<F64Attr, "1.0">:$temperature);
  let results = (outs AttnEdit_Scalar:$result);
  let assemblyFormat = "$teacher `,` $student attr-dict `:` type($teacher)";
  let hasVerifier = 1;
}

def AttnEdit_CrossEntropyLossOp : AttnEdit_Op<"cross_entropy_loss", [Pure,
    DeclareOpInterfaceMethods<AttnEdit_DifferentiableOpInterface>]> {
  let summary = "mean over rows of −log softmax(logits)[target]";
  let description = [{
    Rows whose target is -1 are skipped and the mean is over the others
    (PyTorch's `ignore_index`), so a task can supervise chosen positions.
  }];
  let arguments = (ins AttnEdit_Activation:$logits, AttnEdit_TokenIds:$targets);
  let results = (outs AttnEdit_Scalar:$result);
  let assemblyFormat = "$logits `,` $targets attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def AttnEdit_CosineLossOp : AttnEdit_Op<"cosine_loss", [Pure, AllTypesMatch<["lhs", "rhs"]>,
    DeclareOpInterfaceMethods<AttnEdit_DifferentiableOpInterface>]> {
  let summary = "mean over rows of 1 − cos(lhs_row, rhs_row)";
  let arguments = (ins AttnEdit_Activation:$lhs, AttnEdit_Activation:$rhs);
  let results = (outs AttnEdit_Scalar:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($lhs)";
  let hasVerifier = 1;
}

def AttnEdit_LossGradOp : AttnEdit_Op<"loss_grad", [Pure]> {
  let summary = "gradient of a loss op with respect to one of its inputs";
  let description = [{
    `kind` names the loss (mse, kl, cross_entropy, cosine) and `operand` which
    input (0 or 1) the gradient is for; `grad` is the loss's scalar cotangent.
    Operands and attributes are the loss op's own.
  }];
  let arguments = (ins AttnEdit_Activation:$lhs, AnyRankedTensor:$rhs, AttnEdit_Scalar:$grad,
                       AttnEdit_LossKindAttr:$kind, I64Attr:$operand,
                       DefaultValuedAttr<F64Attr, "1.0">:$temperature);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$lhs `,` $rhs `,` $grad attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Composite attention
//===----------------------------------------------------------------------===//

def AttnEdit_AttentionOp : AttnEdit_Op<"attention", [Pure, AttrSizedOperandSegments,
    DeclareOpInterfaceMethods<AttnEdit_DecomposableOpInterface>,
    DeclareOpInterfaceMethods<AttnEdit_AttentionLikeOpInterface>]> {
  let summary = "causal multi-head / grouped-query attention block";
  let description = [{
    The whole attention module of a Llama/Qwen layer, from the normalised
    hidden state `input` [T, hidden] to the output projection [T, hidden]:

      q = input·Wqᵀ (+bq), k = input·Wkᵀ (+bk), v = input·Wvᵀ (+bv)
      split heads: q [T, Hq, D], k/v [T, Hkv, D]
      (Qwen3) q = rms_norm(q, q_norm), k = rms_norm(k, k_norm) per head
      q, k = rope(q, k, positions)
      o = softmax(scale · q·kᵀ + causal/window mask) · v, KV heads shared by
          Hq / Hkv query heads (MHA when equal, MQA when Hkv = 1)
      result = o·Woᵀ

    `qkv_bias` holds either nothing or the three biases (Qwen2);
    `qk_norm` either nothing or the two per-head RMSNorm weights (Qwen3).
    `window` = 0 is full causal attention. Its definition is its
    decomposition into primitives (DecomposableOpInterface).
  }];
  let arguments = (ins
    AttnEdit_Activation:$input, AttnEdit_TokenIds:$positions,
    AttnEdit_Activation:$q_weight, AttnEdit_Activation:$k_weight,
    AttnEdit_Activation:$v_weight, AttnEdit_Activation:$o_weight,
    Variadic<AttnEdit_Activation>:$qkv_bias, Variadic<AttnEdit_Activation>:$qk_norm,
    I64Attr:$num_heads, I64Attr:$num_kv_heads, I64Attr:$head_dim, F64Attr:$scale,
    F64Attr:$rope_theta, I64Attr:$rotary_dim, AttnEdit_RopeStyleAttr:$rope_style,
    OptionalAttr<DenseF64ArrayAttr>:$llama3_scaling,
    DefaultValuedAttr<F64Attr, "1e-6">:$norm_eps,
    DefaultValuedAttr<I64Attr, "0">:$window);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = [{
    $input `,` $positions `weights` `(` $q_weight `,` $k_weight `,` $v_weight `,` $o_weight `)`
    (`qkv_bias` `(` $qkv_bias^ `)`)? (`qk_norm` `(` $qk_norm^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def AttnEdit_MlaOp : AttnEdit_Op<"mla", [Pure, AttrSizedOperandSegments,
    DeclareOpInterfaceMethods<AttnEdit_DecomposableOpInterface>,
    DeclareOpInterfaceMethods<AttnEdit_AttentionLikeOpInterface>]> {
  let summary = "multi-head latent attention (DeepSeek-V2/V3)";
  let description = [{
    DeepSeek-V2's MLA from the normalised hidden state `input` [T, hidden],
    with H = `num_heads`, n = `qk_nope_head_dim`, r = `qk_rope_head_dim`,
    dv = `v_head_dim` and operands named after DeepSeek's modules:

      q = q_proj·x, or q_b_proj·rms_norm(q_a_proj·x, q_a_layernorm) when
          `q_lora_rank` > 0; per head q = [q_nope (n); q_pe (r)]
      [c (kv_lora_rank); k_pe (r)] = kv_a_proj_with_mqa·x
      per head [k_nope (n); v (dv)] = kv_b_proj·rms_norm(c, kv_a_layernorm)
      q_pe, k_pe = rope(q_pe, k_pe) over r dims; k_pe is shared by all heads
      o = softmax(scale·(q_nope·k_nopeᵀ + q_pe·k_peᵀ) + causal mask)·v
      result = o_proj·o

    Decoding caches only c and k_pe: kv_lora_rank + r values per token.
    `scale` is explicit because a model warm-started from a teacher keeps
    the teacher's 1/sqrt(head_dim) rather than DeepSeek's 1/sqrt(n + r).
  }];
  let arguments = (ins
    AttnEdit_Activation:$input, AttnEdit_TokenIds:$positions,
    Optional<AttnEdit_Activation>:$q_proj, Optional<AttnEdit_Activation>:$q_a_proj,
    Optional<AttnEdit_Activation>:$q_a_layernorm, Optional<AttnEdit_Activation>:$q_b_proj,
    AttnEdit_Activation:$kv_a_proj, AttnEdit_Activation:$kv_a_layernorm,
    AttnEdit_Activation:$kv_b_proj, AttnEdit_Activation:$o_proj,
    I64Attr:$num_heads, I64Attr:$q_lora_rank, I64Attr:$kv_lora_rank,
    I64Attr:$qk_nope_head_dim, I64Attr:$qk_rope_head_dim, I64Attr:$v_head_dim,
    F64Attr:$scale, F64Attr:$rope_theta, AttnEdit_RopeStyleAttr:$rope_style,
    OptionalAttr<DenseF64ArrayAttr>:$llama3_scaling,
    DefaultValuedAttr<F64Attr, "1e-6">:$norm_eps);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = [{
    $input `,` $positions
    (`q` `(` $q_proj^ `)`)?
    (`q_lora` `(` $q_a_proj^ `,` $q_a_layernorm `,` $q_b_proj `)`)?
    `kv` `(` $kv_a_proj `,` $kv_a_layernorm `,` $kv_b_proj `)` `out` `(` $o_proj `)`
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def AttnEdit_GateSwaOp : AttnEdit_Op<"gate_swa", [Pure, AttrSizedOperandSegments,
    DeclareOpInterfaceMethods<AttnEdit_DecomposableOpInterface>,
    DeclareOpInterfaceMethods<AttnEdit_AttentionLikeOpInterface>]> {
  let summary = "gated, optionally sliding-window attention with optional sinks";
  let description = [{
    `attnedit.attention` (same operands and attributes; `window` = 0 is a
    full-attention layer of a hybrid model, W > 0 lets query i see keys
    i - W < j <= i) with two additions:

      - `sinks` [H]: per-head sink logits in the softmax denominator
        (gpt-oss, StreamingLLM), raw, not multiplied by `scale`;
      - an output gate (Qiu et al. 2025, "G1"): the per-head attention output
        [T, H, D] is multiplied, before `o_proj`, by σ(input·gate_weightᵀ),
        gate_weight [H, hidden] for `gate` = headwise (one scalar per head)
        or [H·D, hidden] for elementwise.

    Decoding caches K and V of the last `window` tokens only.
  }];
  let arguments = (ins
    AttnEdit_Activation:$input, AttnEdit_TokenIds:$positions,
    AttnEdit_Activation:$q_weight, AttnEdit_Activation:$k_weight,
    AttnEdit_Activation:$v_weight, AttnEdit_Activation:$o_weight,
    Variadic<AttnEdit_Activation>:$qkv_bias, Variadic<AttnEdit_Activation>:$qk_norm,
    Optional<AttnEdit_Activation>:$gate_weight, Optional<AttnEdit_Activation>:$sinks,
    I64Attr:$num_heads, I64Attr:$num_kv_heads, I64Attr:$head_dim, F64Attr:$scale,
    F64Attr:$rope_theta, I64Attr:$rotary_dim, AttnEdit_RopeStyleAttr:$rope_style,
    OptionalAttr<DenseF64ArrayAttr>:$llama3_scaling,
    DefaultValuedAttr<F64Attr, "1e-6">:$norm_eps,
    I64Attr:$window, AttnEdit_GateKindAttr:$gate);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = [{
    $input `,` $positions `weights` `(` $q_weight `,` $k_weight `,` $v_weight `,` $o_weight `)`
    (`qkv_bias` `(` $qkv_bias^ `)`)? (`qk_norm` `(` $qk_norm^ `)`)?
    (`gate` `(` $gate_weight^ `)`)? (`sinks` `(` $sinks^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Paged KV cache
//
// Decoding functions (--attnedit-build-decode) carry the cache as explicit
// state: each cached tensor is a pool [slots, width] of fixed-size blocks
// (slot = block · block_size + offset) passed in and returned, and a block
// table [S, M] of i32 block ids per sequence says where a sequence's tokens
// live (vLLM's layout). Row i of a batch belongs to sequence 0 when the
// table has one row (a prompt chunk of one sequence) and to sequence i
// otherwise (one new token for each of S sequences). A `ring` table is a
// sliding window's: position p lives in entry (p / block_size) mod M, so a
// window layer reuses its M blocks as the window moves.
//===----------------------------------------------------------------------===//

def AttnEdit_BlockTable : 2DTensorOf<[I32]>;
def AttnEdit_CachePool : 2DTensorOf<[F32]>;

def AttnEdit_CacheWriteOp : AttnEdit_Op<"cache_write", [Pure,
    AllTypesMatch<["pool", "result"]>]> {
  let summary = "writes one row per token into a paged cache pool";
  let description = [{
    `rows` [N, width] are written at the slots of `positions` [N] through
    `block_table`; the result is the pool with those rows replaced. The pool
    operand must have no other use: executors update it in place (the
    caller donates it), as a destination-passing op of a bufferized program
    would.

    ```mlir
    %k1 = attnedit.cache_write %k0, %rows, %table, %pos {block_size = 16 : i64}
        : (tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x?xi32>, tensor<?xi32>) -> tensor<?x32xf32>
    ```
  }];
  let arguments = (ins AttnEdit_CachePool:$pool, AttnEdit_CachePool:$rows,
                       AttnEdit_BlockTable:$block_table, AttnEdit_TokenIds:$positions,
                       I64Attr:$block_size, UnitAttr:$ring);
  let results = (outs AttnEdit_CachePool:$result);
  let assemblyFormat = [{
    $pool `,` $rows `,` $block_table `,` $positions attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def AttnEdit_PagedAttentionOp : AttnEdit_Op<"paged_attention", [Pure]> {
  let summary = "causal attention of new queries over a paged KV cache";
  let description = [{
    `query` [N, H, Dqk]: row i, at position p = positions[i] of its sequence
    (see the section comment), attends to that sequence's cached keys at
    positions j with j <= p and, when `window` > 0, p - j < window:

      o_i = softmax(scale · q_i·k_jᵀ [, sinks[h]]) · v_j

    Key j of KV head g is k_pool[slot(j), g·Dqk : (g+1)·Dqk]; its value is
    the first `v_head_dim` features of v_pool[slot(j)]'s g-th of
    `num_kv_heads` equal segments, so MLA's absorbed decode reads its latent
    c_kv as the value from the same [c_kv; k_pe] pool it scores against.
    Query head h uses KV head h / (H / num_kv_heads). `sinks` [H] are raw
    per-head sink logits (gate_swa). Result [N, H, v_head_dim].
  }];
  let arguments = (ins AttnEdit_Activation:$query, AttnEdit_CachePool:$k_pool,
                       AttnEdit_CachePool:$v_pool, AttnEdit_BlockTable:$block_table,
                       AttnEdit_TokenIds:$positions, Optional<AttnEdit_Activation>:$sinks,
                       I64Attr:$num_kv_heads, I64Attr:$v_head_dim, F64Attr:$scale,
                       DefaultValuedAttr<I64Attr, "0">:$window, I64Attr:$block_size,
                       UnitAttr:$ring);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = [{
    $query `,` $k_pool `,` $v_pool `,` $block_table `,` $positions
    (`sinks` `(` $sinks^ `)`)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

#endif // ATTNEDIT_OPS_TD
