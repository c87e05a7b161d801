//===- AscendTypes.td - ascend buffer type -----------------*- tablegen -*-===//

#ifndef ASCEND_TYPES_TD
#define ASCEND_TYPES_TD

include "attnedit/Ascend/AscendBase.td"

def Ascend_BufType : TypeDef<Ascend_Dialect, "Buf"> {
  let mnemonic = "buf";
  let summary = "a tile or tensor in one address space, with its layout";
  let description = [{
    `!ascend.buf<l1, 128x256xbf16, nz>` is a 128 x 256 bf16 tile in L1 in the
    fractal NZ layout. On-chip buffers are 2-D; GM tensors may have leading
    batch dimensions and are ND. A fractal tile occupies whole 16 x C0
    fractals (512 bytes each, S8); an ND tile in UB pads each row to 32 bytes
    (S3: vector operands are 32-byte aligned). `getBytes()` is that padded
    size, which is what capacity checks count.
  }];
  let parameters = (ins "Space":$space, ArrayRefParameter<"int64_t">:$shape,
                        "Type":$elementType, "Layout":$layout);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    int64_t getElementBytes() const;
    int64_t getRows() const { return getShape()[getShape().size() - 2]; }
    int64_t getCols() const { return getShape().back(); }
    /// Bytes the buffer occupies, fractal and row padding included.
    int64_t getBytes() const;
  }];
}

#endif // ASCEND_TYPES_TD
