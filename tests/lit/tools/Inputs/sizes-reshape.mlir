// A hand-written @forward whose dynamic sizes disagree at run time (see runtime-size-checks.test).
module attributes {attnedit.parameter_files = ["../../../../scripts/data/stories260K/stories260K.bin"]} {
  func.func @forward(%tok: tensor<?xi32> {attnedit.name = "tokens"}, %pos: tensor<?xi32> {attnedit.name = "positions"}) -> tensor<?x512xf32> {
    %E = attnedit.param "model.embed_tokens.weight" : tensor<512x64xf32>
    %x = attnedit.embedding %E[%tok] : (tensor<512x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
    %r = attnedit.reshape %x : (tensor<?x64xf32>) -> tensor<?x96xf32>
    %y = attnedit.reshape %r : (tensor<?x96xf32>) -> tensor<?x64xf32>
    %logits = attnedit.linear %y, %E : (tensor<?x64xf32>, tensor<512x64xf32>) -> tensor<?x512xf32>
    return %logits : tensor<?x512xf32>
  }
}
