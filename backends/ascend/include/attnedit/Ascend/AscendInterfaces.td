//===- AscendInterfaces.td - ascend op interfaces ----------*- tablegen -*-===//

#ifndef ASCEND_INTERFACES_TD
#define ASCEND_INTERFACES_TD

include "mlir/IR/OpBase.td"

def Ascend_PipeOpInterface : OpInterface<"PipeOpInterface"> {
  let cppNamespace = "::mlir::attnedit::ascend";
  let description = [{
    An instruction that the scalar unit issues into one pipe's in-order
    queue: data movement on its MTE/FIX pipe, mmad on M, vector ops on V,
    set_flag on its source pipe and wait_flag on its destination pipe (S22).
  }];
  let methods = [
    InterfaceMethod<"The pipe whose queue executes this op.", "::mlir::attnedit::ascend::Pipe",
                    "getExecutingPipe">,
  ];
}

#endif // ASCEND_INTERFACES_TD
