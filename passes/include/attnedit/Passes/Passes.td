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
    Replaces every op implementing `DecomposableOpInterface` (today
    `attnedit.attention`) by its primitive expansion, for backends and
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

#endif // ATTNEDIT_PASSES_TD
