func.func @linear(%x: tensor<64x96xf32>, %w: tensor<80x96xf32>) -> tensor<64x80xf32> {
  %y = attnedit.linear %x, %w : (tensor<64x96xf32>, tensor<80x96xf32>) -> tensor<64x80xf32>
  return %y : tensor<64x80xf32>
}
