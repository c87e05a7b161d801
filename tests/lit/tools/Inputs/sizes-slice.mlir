// A hand-written @forward whose dynamic sizes disagree at run time (see runtime-size-checks.test).
module attributes {attnedit.parameter_files = ["../../../../scripts/data/stories260K/stories260K.bin"]} {
  func.func @forward(%tok: tensor<?xi32> {attnedit.name = "tokens"}, %pos: tensor<?xi32> {attnedit.name = "positions"}) -> tensor<?x512xf32> {
    %E = attnedit.param "model.embed_tokens.weight" : tensor<512x64xf32>
    %x = attnedit.embedding %E[%tok] : (tensor<512x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
    %y1 = attnedit.slice %x {axis = 0 : i64, offset = 2 : i64, size = 3 : i64} : (tensor<?x64xf32>) -> tensor<3x64xf32>
    %y2 = attnedit.reshape %y1 : (tensor<3x64xf32>) -> tensor<?x64xf32>
    %y = attnedit.add %y2, %y2 : tensor<?x64xf32>
    %logits = attnedit.linear %y, %E : (tensor<?x64xf32>, tensor<512x64xf32>) -> tensor<?x512xf32>
    return %logits : tensor<?x512xf32>
  }
}
