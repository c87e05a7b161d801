// A hand-written @forward whose dynamic sizes disagree at run time (see runtime-size-checks.test).
module attributes {attnedit.parameter_files = ["../../../../scripts/data/stories260K/stories260K.bin"]} {
  func.func @forward(%tok: tensor<?xi32> {attnedit.name = "tokens"}, %pos: tensor<?xi32> {attnedit.name = "positions"}) -> tensor<?x512xf32> {
    %E = attnedit.param "model.embed_tokens.weight" : tensor<512x64xf32>
    %x = attnedit.embedding %E[%tok] : (tensor<512x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
    %c = attnedit.concat %x, %x {axis = 0 : i64} : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
    %t = attnedit.transpose %c {permutation = array<i64: 1, 0>} : (tensor<?x64xf32>) -> tensor<64x?xf32>
    %w = attnedit.matmul %t, %x : (tensor<64x?xf32>, tensor<?x64xf32>) -> tensor<64x64xf32>
    %y = attnedit.linear %x, %w : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %logits = attnedit.linear %y, %E : (tensor<?x64xf32>, tensor<512x64xf32>) -> tensor<?x512xf32>
    return %logits : tensor<?x512xf32>
  }
}
