// RUN: attnedit-opt %s --attnedit-ascend-simulate -o /dev/null | FileCheck %s

// Tests that sync_all orders GM accesses across cores: block 1 reads what
// block 0 wrote before the barrier, then each writes its own rows.
// CHECK: ascend-simulate: @exchange: 2 blocks, {{[0-9]+}} instructions, no hazards
ascend.kernel @exchange target "910b" blocks 2 core aiv {
^bb0(%blk: index, %y: !ascend.buf<gm, 16x64xf32, nd>):
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  %t = ascend.alloc offset 0 slots 1 : !ascend.buf<ub, 8x64xf32, nd>
  %u = ascend.alloc offset 2048 slots 1 : !ascend.buf<ub, 8x64xf32, nd>
  %row = arith.muli %blk, %c8 : index
  ascend.vdup 2.0 -> %t : !ascend.buf<ub, 8x64xf32, nd>
  ascend.set_flag v -> mte3, %c0
  ascend.wait_flag v -> mte3, %c0
  ascend.copy mte3 %t[%c0, %c0] -> %y[%row, %c0] sizes [8, 64] : !ascend.buf<ub, 8x64xf32, nd> -> !ascend.buf<gm, 16x64xf32, nd>
  ascend.sync_all
  %other = arith.subi %c8, %row : index
  ascend.copy mte2 %y[%other, %c0] -> %u[%c0, %c0] sizes [8, 64] : !ascend.buf<gm, 16x64xf32, nd> -> !ascend.buf<ub, 8x64xf32, nd>
}
