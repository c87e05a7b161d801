// A hand-written @forward with a 512 TB intermediate (see runtime-size-checks.test).
module attributes {attnedit.parameter_files = ["../../../../scripts/data/stories260K/stories260K.bin"]} {
  func.func @forward(%tok: tensor<?xi32> {attnedit.name = "tokens"}, %pos: tensor<?xi32> {attnedit.name = "positions"}) -> tensor<2199023255552x64xf32> {
    %E = attnedit.param "model.embed_tokens.weight" : tensor<512x64xf32>
    %s = attnedit.slice %E {axis = 0 : i64, offset = 0 : i64, size = 1 : i64} : (tensor<512x64xf32>) -> tensor<1x64xf32>
    %b = attnedit.broadcast %s : (tensor<1x64xf32>) -> tensor<2199023255552x64xf32>
    return %b : tensor<2199023255552x64xf32>
  }
}
