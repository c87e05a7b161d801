// A hand-written @forward whose dynamic sizes disagree at run time (see runtime-size-checks.test).
module attributes {attnedit.parameter_files = ["../../../../scripts/data/stories260K/stories260K.bin"]} {
  func.func @forward(%tok: tensor<?xi32> {attnedit.name = "tokens"}, %pos: tensor<?xi32> {attnedit.name = "positions"}) -> tensor<?x512xf32> {
    %E = attnedit.param "model.embed_tokens.weight" : tensor<512x64xf32>
    %x = attnedit.embedding %E[%tok] : (tensor<512x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
    %k = attnedit.slice %x {axis = 0 : i64, offset = 0 : i64, size = 2 : i64} : (tensor<?x64xf32>) -> tensor<2x64xf32>
    %kt = attnedit.transpose %k {permutation = array<i64: 1, 0>} : (tensor<2x64xf32>) -> tensor<64x2xf32>
    %s = attnedit.matmul %x, %kt : (tensor<?x64xf32>, tensor<64x2xf32>) -> tensor<?x2xf32>
    %m = attnedit.causal_mask %s : tensor<?x2xf32>
    %p = attnedit.softmax %m {axis = 1 : i64} : tensor<?x2xf32>
    %y = attnedit.matmul %p, %k : (tensor<?x2xf32>, tensor<2x64xf32>) -> tensor<?x64xf32>
    %logits = attnedit.linear %y, %E : (tensor<?x64xf32>, tensor<512x64xf32>) -> tensor<?x512xf32>
    return %logits : tensor<?x512xf32>
  }
}
