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
    parameters that distillation updates.

    ```mlir
    %w = attnedit.param "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xbf16>
    ```
  }];
  let arguments = (ins StrAttr:$name, UnitAttr:$trainable);
  let results = (outs AttnEdit_Storage:$result);
  let assemblyFormat = "$name (`trainable` $trainable^)? attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def AttnEdit_ConvertOp : AttnEdit_Op<"convert", [Pure]> {
  let summary = "element type conversion (storage type to f32 activations)";
  let arguments = (ins AttnEdit_Storage:$input);
  let results = (outs AttnEdit_Storage:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Layers
//===----------------------------------------------------------------------===//

def AttnEdit_EmbeddingOp : AttnEdit_Op<"embedding", [Pure]> {
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

def AttnEdit_LinearOp : AttnEdit_Op<"linear", [Pure]> {
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

def AttnEdit_RmsNormOp : AttnEdit_Op<"rms_norm", [Pure]> {
  let summary = "x / sqrt(mean(x², last axis) + eps) · w";
  let arguments = (ins AttnEdit_Activation:$input, AttnEdit_Activation:$weight,
                       F64Attr:$eps);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def AttnEdit_RopeOp : AttnEdit_Op<"rope", [Pure]> {
  let summary = "rotary position embedding";
  let description = [{
    Rotates the first `rotary_dim` features of each head of `input` [T, H, D]
    by angle positions[t] · inv_freq[i], inv_freq[i] = theta^(-2i/rotary_dim);
    features past `rotary_dim` pass through (partial rotary). `style` picks
    the pairing: `rotate_half` pairs (i, i + rotary_dim/2) as HF's
    `rotate_half`; `interleaved` pairs (2i, 2i+1) as llama2.c. When present,
    `llama3_scaling` = [factor, low_freq_factor, high_freq_factor,
    original_max_position_embeddings] rescales inv_freq as Llama 3.1 does.
  }];
  let arguments = (ins AttnEdit_Activation:$input, AttnEdit_TokenIds:$positions,
                       F64Attr:$theta, I64Attr:$rotary_dim,
                       AttnEdit_RopeStyleAttr:$style,
                       OptionalAttr<DenseF64ArrayAttr>:$llama3_scaling);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$input `,` $positions attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def AttnEdit_MatmulOp : AttnEdit_Op<"matmul", [Pure]> {
  let summary = "batched matrix product [B..., M, K] x [B..., K, N]";
  let arguments = (ins AttnEdit_Activation:$lhs, AttnEdit_Activation:$rhs);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def AttnEdit_SoftmaxOp : AttnEdit_Op<"softmax", [Pure, SameOperandsAndResultType]> {
  let summary = "numerically stable softmax along one axis";
  let arguments = (ins AttnEdit_Activation:$input, I64Attr:$axis);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def AttnEdit_CausalMaskOp : AttnEdit_Op<"causal_mask", [Pure, SameOperandsAndResultType]> {
  let summary = "sets future (and out-of-window) scores to -inf";
  let description = [{
    `input` is [..., Tq, Tk] with the queries being the last Tq of the Tk key
    positions. Query i (absolute position Tk - Tq + i) keeps key j when
    j <= pos(i) and, if `window` > 0, pos(i) - j < window; other entries
    become -inf, so a following softmax gives them zero weight.
  }];
  let arguments = (ins AttnEdit_Activation:$input,
                       DefaultValuedAttr<I64Attr, "0">:$window);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def AttnEdit_RepeatKvOp : AttnEdit_Op<"repeat_kv", [Pure]> {
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
    : AttnEdit_Op<mnemonic, [Pure, SameOperandsAndResultType]> {
  let summary = summaryText;
  let arguments = (ins AttnEdit_Activation:$input);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

class AttnEdit_BinaryOp<string mnemonic, string summaryText>
    : AttnEdit_Op<mnemonic, [Pure, SameOperandsAndResultType]> {
  let summary = summaryText;
  let arguments = (ins AttnEdit_Activation:$lhs, AttnEdit_Activation:$rhs);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($lhs)";
}

def AttnEdit_SiluOp : AttnEdit_UnaryOp<"silu", "x · sigmoid(x)">;
def AttnEdit_AddOp : AttnEdit_BinaryOp<"add", "elementwise sum">;
def AttnEdit_MulOp : AttnEdit_BinaryOp<"mul", "elementwise product">;

def AttnEdit_ScaleOp : AttnEdit_Op<"scale", [Pure, SameOperandsAndResultType]> {
  let summary = "multiplication by a constant";
  let arguments = (ins AttnEdit_Activation:$input, F64Attr:$factor);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

//===----------------------------------------------------------------------===//
// Shape
//===----------------------------------------------------------------------===//

def AttnEdit_ReshapeOp : AttnEdit_Op<"reshape", [Pure]> {
  let summary = "row-major reshape; at most one dynamic result dimension";
  let arguments = (ins AttnEdit_Activation:$input);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def AttnEdit_TransposeOp : AttnEdit_Op<"transpose", [Pure]> {
  let summary = "axis permutation: result dim i is input dim permutation[i]";
  let arguments = (ins AttnEdit_Activation:$input, DenseI64ArrayAttr:$permutation);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def AttnEdit_SliceOp : AttnEdit_Op<"slice", [Pure]> {
  let summary = "input[..., offset : offset + size, ...] along one axis";
  let arguments = (ins AttnEdit_Activation:$input, I64Attr:$axis, I64Attr:$offset,
                       I64Attr:$size);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def AttnEdit_ConcatOp : AttnEdit_Op<"concat", [Pure]> {
  let summary = "concatenation along one axis";
  let arguments = (ins Variadic<AttnEdit_Activation>:$inputs, I64Attr:$axis);
  let results = (outs AttnEdit_Activation:$result);
  let assemblyFormat = "$inputs attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Composite attention
//===----------------------------------------------------------------------===//

def AttnEdit_AttentionOp : AttnEdit_Op<"attention", [Pure, AttrSizedOperandSegments,
    DeclareOpInterfaceMethods<AttnEdit_DecomposableOpInterface>]> {
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

#endif // ATTNEDIT_OPS_TD
