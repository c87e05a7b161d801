// RUN: not attnedit-opt %s --split-input-file --attnedit-ascend-simulate -o /dev/null 2>&1 | FileCheck %s

// Tests that reusing a buffer without the consumer's flag is a write over a
// buffer still in use: MTE3 copies the UB tile out, V refills it unordered.
// CHECK: error: simulator: reuse: block 0: {{.*}}ascend.vdup (V): write over a buffer still in use: UB bytes are read by {{.*}}ascend.copy (MTE3), which is not ordered before this write; missing set_flag/wait_flag mte3 -> v
ascend.kernel @reuse target "910b" blocks 1 core aiv {
^bb0(%blk: index, %y: !ascend.buf<gm, 16x64xf32, nd>):
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  %t = ascend.alloc offset 0 slots 1 : !ascend.buf<ub, 8x64xf32, nd>
  ascend.vdup 1.0 -> %t : !ascend.buf<ub, 8x64xf32, nd>
  ascend.set_flag v -> mte3, %c0
  ascend.barrier v
  ascend.vdup 2.0 -> %t : !ascend.buf<ub, 8x64xf32, nd>
  ascend.wait_flag v -> mte3, %c0
  ascend.copy mte3 %t[%c0, %c0] -> %y[%c0, %c0] sizes [8, 64] : !ascend.buf<ub, 8x64xf32, nd> -> !ascend.buf<gm, 16x64xf32, nd>
}

// -----

// Tests that a set on the wrong pipe does not publish a write: MTE2 wrote,
// but the flag is set on MTE3, so the vector read is unordered (research
// §12.5).
// CHECK: error: simulator: wrong_pipe: block 0: {{.*}}ascend.vexp (V): read before signalled write: UB bytes written by {{.*}}ascend.copy (MTE2) are not ordered before this read; missing set_flag/wait_flag mte2 -> v
ascend.kernel @wrong_pipe target "910b" blocks 1 core aiv {
^bb0(%blk: index, %x: !ascend.buf<gm, 8x64xf32, nd>):
  %c0 = arith.constant 0 : index
  %in = ascend.alloc offset 0 slots 1 : !ascend.buf<ub, 8x64xf32, nd>
  %out = ascend.alloc offset 2048 slots 1 : !ascend.buf<ub, 8x64xf32, nd>
  ascend.copy mte2 %x[%c0, %c0] -> %in[%c0, %c0] sizes [8, 64] : !ascend.buf<gm, 8x64xf32, nd> -> !ascend.buf<ub, 8x64xf32, nd>
  ascend.set_flag mte3 -> v, %c0
  ascend.wait_flag mte3 -> v, %c0
  ascend.vexp %in -> %out : !ascend.buf<ub, 8x64xf32, nd>
}

// -----

// Tests that a window offset computed at run time (from the block index) is
// checked for the fractal granule: row 8 of an NZ tile is misaligned.
// CHECK: error: simulator: misaligned: block 1: {{.*}}ascend.copy (MTE2): misaligned destination window at (8, 0) of a nz tile: offsets must be multiples of 16x16
ascend.kernel @misaligned target "910b" blocks 2 core aic {
^bb0(%blk: index, %a: !ascend.buf<gm, 32x32xbf16, nd>):
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  %row = arith.muli %blk, %c8 : index
  %l = ascend.alloc offset 0 slots 1 : !ascend.buf<l1, 32x32xbf16, nz>
  ascend.copy mte2 %a[%c0, %c0] -> %l[%row, %c0] sizes [16, 32] : !ascend.buf<gm, 32x32xbf16, nd> -> !ascend.buf<l1, 32x32xbf16, nz>
}

// -----

// Tests that a slot index past a multi-buffer's planned bytes cannot escape
// the check: slots wrap (index mod slots), so this one is fine, while an
// event id computed at run time is checked against the target's range.
// CHECK: error: simulator: event: block 0: {{.*}}ascend.set_flag (MTE2): event 9 is outside [0, 8) on 910b
ascend.kernel @event target "910b" blocks 1 core aic {
^bb0(%blk: index):
  %c9 = arith.constant 9 : index
  %ev = arith.addi %blk, %c9 : index
  ascend.set_flag mte2 -> mte1, %ev
  ascend.wait_flag mte2 -> mte1, %ev
}

// -----

// Tests that two cores writing the same GM rows race unless a sync_all
// separates them.
// CHECK: error: simulator: gm_race: block 1: {{.*}}ascend.copy (MTE3): writes GM also written by block 0 ({{.*}}) without a sync_all between the cores
ascend.kernel @gm_race target "910b" blocks 2 core aiv {
^bb0(%blk: index, %y: !ascend.buf<gm, 8x64xf32, nd>):
  %c0 = arith.constant 0 : index
  %t = ascend.alloc offset 0 slots 1 : !ascend.buf<ub, 8x64xf32, nd>
  ascend.vdup 1.0 -> %t : !ascend.buf<ub, 8x64xf32, nd>
  ascend.set_flag v -> mte3, %c0
  ascend.wait_flag v -> mte3, %c0
  ascend.copy mte3 %t[%c0, %c0] -> %y[%c0, %c0] sizes [8, 64] : !ascend.buf<ub, 8x64xf32, nd> -> !ascend.buf<gm, 8x64xf32, nd>
}
