// RUN: attnedit-opt %s --split-input-file --verify-diagnostics

// Tests that an allocation past L0A's 64 KB on the 910B is rejected.
ascend.kernel @l0a_overflow target "910b" blocks 1 core aic {
^bb0(%blk: index):
  // expected-error @+1 {{needs bytes [0, 131072) of l0a, which has 65536 on 910b}}
  %a = ascend.alloc offset 0 slots 2 : !ascend.buf<l0a, 128x256xbf16, zz>
}

// -----

// Tests that the same tile fits the 910A's larger L1 but not the 910B's.
ascend.kernel @l1_910a target "910a" blocks 1 core coupled {
^bb0(%blk: index):
  %a = ascend.alloc offset 0 slots 2 : !ascend.buf<l1, 256x640xbf16, nz>
}
ascend.kernel @l1_910b target "910b" blocks 1 core aic {
^bb0(%blk: index):
  // expected-error @+1 {{needs bytes [0, 655360) of l1, which has 524288 on 910b}}
  %a = ascend.alloc offset 0 slots 2 : !ascend.buf<l1, 256x640xbf16, nz>
}

// -----

// Tests that an L0C allocation must start on a 512-byte boundary.
ascend.kernel @l0c_align target "910b" blocks 1 core aic {
^bb0(%blk: index):
  // expected-error @+1 {{offset 256 is not aligned to the 512 bytes l0c requires on 910b}}
  %c = ascend.alloc offset 256 slots 1 : !ascend.buf<l0c, 16x16xf32, nz>
}

// -----

// Tests that a UB allocation must be 32-byte aligned.
ascend.kernel @ub_align target "910b" blocks 1 core aiv {
^bb0(%blk: index):
  // expected-error @+1 {{offset 16 is not aligned to the 32 bytes ub requires}}
  %c = ascend.alloc offset 16 slots 1 : !ascend.buf<ub, 8x8xf32, nd>
}

// -----

// Tests that two allocations of one space may not overlap.
ascend.kernel @overlap target "910b" blocks 1 core aiv {
^bb0(%blk: index):
  // expected-note @+1 {{the other allocation}}
  %a = ascend.alloc offset 0 slots 2 : !ascend.buf<ub, 8x8xf32, nd>
  // expected-error @+1 {{overlaps another allocation of its space (bytes [0, 512))}}
  %b = ascend.alloc offset 256 slots 1 : !ascend.buf<ub, 8x8xf32, nd>
}

// -----

// Tests that an allocation inside a loop may not overlap one of the region
// around the loop: both are usable in its body.
ascend.kernel @overlap_nested target "910b" blocks 1 core aiv {
^bb0(%blk: index):
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  // expected-note @+1 {{the other allocation}}
  %a = ascend.alloc offset 0 slots 1 : !ascend.buf<ub, 8x8xf32, nd>
  scf.for %i = %c0 to %c1 step %c1 {
    // expected-error @+1 {{overlaps another allocation of its space (bytes [0, 256))}}
    %b = ascend.alloc offset 0 slots 1 : !ascend.buf<ub, 8x8xf32, nd>
  }
}

// -----

// Tests that a copy must use a path the target has: no L0C -> UB on the 910B.
ascend.kernel @no_path target "910b" blocks 1 core aic {
^bb0(%blk: index):
  %c0 = arith.constant 0 : index
  %c = ascend.alloc offset 0 slots 1 : !ascend.buf<l0c, 16x16xf32, nz>
  %u = ascend.alloc offset 0 slots 1 : !ascend.buf<ub, 16x16xf32, nd>
  // expected-error @+1 {{path l0c -> ub does not exist on 910b}}
  ascend.copy v %c[%c0, %c0] -> %u[%c0, %c0] sizes [16, 16] : !ascend.buf<l0c, 16x16xf32, nz> -> !ascend.buf<ub, 16x16xf32, nd>
}

// -----

// Tests that a copy runs on the pipe of its path: GM -> L1 is MTE2, not MTE1.
ascend.kernel @wrong_pipe target "910b" blocks 1 core aic {
^bb0(%blk: index, %a: !ascend.buf<gm, 16x16xbf16, nd>):
  %c0 = arith.constant 0 : index
  %l = ascend.alloc offset 0 slots 1 : !ascend.buf<l1, 16x16xbf16, nz>
  // expected-error @+1 {{path gm -> l1 runs on mte2 on 910b, not mte1}}
  ascend.copy mte1 %a[%c0, %c0] -> %l[%c0, %c0] sizes [16, 16] : !ascend.buf<gm, 16x16xbf16, nd> -> !ascend.buf<l1, 16x16xbf16, nz>
}

// -----

// Tests that a cube (AIC) kernel of the separated 910B has no vector pipe.
ascend.kernel @aic_vector target "910b" blocks 1 core aic {
^bb0(%blk: index):
  %u = ascend.alloc offset 0 slots 1 : !ascend.buf<ub, 8x8xf32, nd>
  // expected-error @+1 {{uses pipe v, which a aic core of 910b does not have}}
  ascend.vexp %u -> %u : !ascend.buf<ub, 8x8xf32, nd>
}

// -----

// Tests that event ids stay in the target's range (0-7 on the 910B, S22).
ascend.kernel @event_range target "910b" blocks 1 core aic {
^bb0(%blk: index):
  %c8 = arith.constant 8 : index
  // expected-error @+1 {{event 8 is outside [0, 8) on 910b}}
  ascend.set_flag mte2 -> mte1, %c8
}

// -----

// Tests that the 910A has only four event ids per pipe pair.
ascend.kernel @event_range_910a target "910a" blocks 1 core coupled {
^bb0(%blk: index):
  %c4 = arith.constant 4 : index
  // expected-error @+1 {{event 4 is outside [0, 4) on 910a}}
  ascend.wait_flag mte2 -> mte1, %c4
}

// -----

// Tests that a window offset into a fractal tile is fractal-aligned.
ascend.kernel @misaligned_window target "910b" blocks 1 core aic {
^bb0(%blk: index, %a: !ascend.buf<gm, 64x64xbf16, nd>):
  %c0 = arith.constant 0 : index
  %c8 = arith.constant 8 : index
  %l = ascend.alloc offset 0 slots 1 : !ascend.buf<l1, 64x64xbf16, nz>
  // expected-error @+1 {{destination window offset is not aligned to the 16x16 granule of its nz layout}}
  ascend.copy mte2 %a[%c0, %c0] -> %l[%c8, %c0] sizes [16, 16] : !ascend.buf<gm, 64x64xbf16, nd> -> !ascend.buf<l1, 64x64xbf16, nz>
}

// -----

// Tests that a window must fit its on-chip tile.
ascend.kernel @window_fit target "910b" blocks 1 core aic {
^bb0(%blk: index, %a: !ascend.buf<gm, 64x64xbf16, nd>):
  %c0 = arith.constant 0 : index
  %l = ascend.alloc offset 0 slots 1 : !ascend.buf<l1, 32x32xbf16, nz>
  // expected-error @+1 {{destination window 64x32 does not fit the 32x32 tile}}
  ascend.copy mte2 %a[%c0, %c0] -> %l[%c0, %c0] sizes [64, 32] : !ascend.buf<gm, 64x64xbf16, nd> -> !ascend.buf<l1, 32x32xbf16, nz>
}

// -----

// Tests that mmad operand shapes must chain.
ascend.kernel @mmad_shapes target "910b" blocks 1 core aic {
^bb0(%blk: index):
  %t = arith.constant true
  %a = ascend.alloc offset 0 slots 1 : !ascend.buf<l0a, 16x32xbf16, zz>
  %b = ascend.alloc offset 0 slots 1 : !ascend.buf<l0b, 16x16xbf16, zn>
  %c = ascend.alloc offset 0 slots 1 : !ascend.buf<l0c, 16x16xf32, nz>
  // expected-error @+1 {{shapes do not chain: a 16x32, b 16x16, c 16x16}}
  ascend.mmad %a, %b -> %c init %t : !ascend.buf<l0a, 16x32xbf16, zz>, !ascend.buf<l0b, 16x16xbf16, zn> -> !ascend.buf<l0c, 16x16xf32, nz>
}

// -----

// Tests that the 910A Cube has no bf16 mode.
ascend.kernel @bf16_910a target "910a" blocks 1 core coupled {
^bb0(%blk: index):
  %t = arith.constant true
  %a = ascend.alloc offset 0 slots 1 : !ascend.buf<l0a, 16x16xbf16, zz>
  %b = ascend.alloc offset 0 slots 1 : !ascend.buf<l0b, 16x16xbf16, zn>
  %c = ascend.alloc offset 0 slots 1 : !ascend.buf<l0c, 16x16xf32, nz>
  // expected-error @+1 {{the 910a Cube has no bf16 mode}}
  ascend.mmad %a, %b -> %c init %t : !ascend.buf<l0a, 16x16xbf16, zz>, !ascend.buf<l0b, 16x16xbf16, zn> -> !ascend.buf<l0c, 16x16xf32, nz>
}

// -----

// Tests the layout each space requires.
// expected-error @+1 {{l0a buffers are ZZ (the Cube's left-operand layout)}}
func.func private @layout(!ascend.buf<l0a, 16x16xf16, nd>)

// -----

// Tests that L0C accumulates only in f32.
// expected-error @+1 {{l0c accumulates in f32}}
func.func private @l0c_type(!ascend.buf<l0c, 16x16xf16, nz>)

// -----

// Tests that an unknown target is named.
// expected-error @+1 {{unknown Ascend target '910z' (built-in: 910b, 910a; or a .json file)}}
ascend.kernel @bad_target target "910z" blocks 1 core aic {
^bb0(%blk: index):
}

// -----

// Tests that a coupled kernel cannot target the separated 910B.
// expected-error @+1 {{core kind coupled does not exist on 910b (separated AI cores)}}
ascend.kernel @coupled_910b target "910b" blocks 1 core coupled {
^bb0(%blk: index):
}

// -----

// Tests that a barrier on the scalar pipe is refused (S55).
ascend.kernel @barrier_s target "910b" blocks 1 core aic {
^bb0(%blk: index):
  // expected-error @+1 {{on the scalar pipe is a hardware error}}
  ascend.barrier s
}

// -----

// Tests that set_flag orders two different pipes.
ascend.kernel @flag_same target "910b" blocks 1 core aic {
^bb0(%blk: index):
  %c0 = arith.constant 0 : index
  // expected-error @+1 {{orders two different pipes; use ascend.barrier within one pipe}}
  ascend.set_flag m -> m, %c0
}

// -----

// Tests that a launch matches its kernel's GM arguments.
ascend.kernel @k target "910b" blocks 1 core aic {
^bb0(%blk: index, %a: !ascend.buf<gm, 4x4xbf16, nd>, %b: !ascend.buf<gm, 4x4xf32, nd>):
}
func.func @launch(%x: tensor<4x8xf32>) -> tensor<4x4xf32> {
  // expected-error @+1 {{tensor 0 has shape 'tensor<4x8xf32>' but the kernel's GM argument is '!ascend.buf<gm, 4x4xbf16, nd>'}}
  %y = ascend.launch @k(%x) : (tensor<4x8xf32>) -> tensor<4x4xf32>
  return %y : tensor<4x4xf32>
}

// -----

// Tests that a gather's index is one row as wide as its result.
ascend.kernel @gather_index target "910b" blocks 1 core aiv {
^bb0(%blk: index):
  %x = ascend.alloc offset 0 slots 1 : !ascend.buf<ub, 8x8xf32, nd>
  %i = ascend.alloc offset 256 slots 1 : !ascend.buf<ub, 2x8xf32, nd>
  // expected-error @+1 {{gathers [r, c] from a [r, c'] tile of its element type by a [1, c] index row}}
  ascend.vgather %x[%i] -> %x : !ascend.buf<ub, 8x8xf32, nd>, !ascend.buf<ub, 2x8xf32, nd> -> !ascend.buf<ub, 8x8xf32, nd>
}

// -----

// Tests that a transpose's destination is the source's shape swapped.
ascend.kernel @transpose_shape target "910b" blocks 1 core aiv {
^bb0(%blk: index):
  %x = ascend.alloc offset 0 slots 1 : !ascend.buf<ub, 8x16xf32, nd>
  %y = ascend.alloc offset 512 slots 1 : !ascend.buf<ub, 8x16xf32, nd>
  // expected-error @+1 {{transposes a [r, c] tile into a [c, r] tile of its element type}}
  ascend.vtranspose %x -> %y : !ascend.buf<ub, 8x16xf32, nd> -> !ascend.buf<ub, 8x16xf32, nd>
}

// -----

// Tests that cross-core flags exist only in mix kernels, follow a data pipe,
// and use the 910B's flag ids 0-10 (S23).
ascend.kernel @cross_in_aic target "910b" blocks 1 core aic {
^bb0(%blk: index):
  %c0 = arith.constant 0 : index
  // expected-error @+1 {{synchronises the cores of a mix kernel's block}}
  ascend.cross_set fix, %c0
}

// -----

ascend.kernel @cross_scalar target "910b" blocks 1 core mix {
^bb0(%blk: index, %core: index):
  %c0 = arith.constant 0 : index
  // expected-error @+1 {{follows a data pipe; the scalar pipe is not allowed (S23)}}
  ascend.cross_set s, %c0
}

// -----

ascend.kernel @cross_id target "910b" blocks 1 core mix {
^bb0(%blk: index, %core: index):
  %c11 = arith.constant 11 : index
  // expected-error @+1 {{cross-core flag 11 is outside [0, 11) on 910b}}
  ascend.cross_wait %c11
}

// -----

// Tests that a mix kernel takes the core within the block after the block index.
// expected-error @+1 {{entry block of a mix kernel takes the block index, then the core within the block}}
ascend.kernel @mix_args target "910b" blocks 1 core mix {
^bb0(%blk: index):
}

// -----

// Tests that a mix kernel needs separated AI cores.
// expected-error @+1 {{core kind mix does not exist on 910a (coupled AI cores)}}
ascend.kernel @mix_910a target "910a" blocks 1 core mix {
^bb0(%blk: index, %core: index):
}

// -----

// Tests that a data-dependent offset reads an f32 UB element and moves a
// dimension of the copy's GM side.
ascend.kernel @bad_index target "910b" blocks 1 core aiv {
^bb0(%blk: index, %table: !ascend.buf<gm, 100x64xf32, nd>):
  %c0 = arith.constant 0 : index
  %id = ascend.alloc offset 0 slots 1 : !ascend.buf<ub, 8x1xf32, nd>
  %rows = ascend.alloc offset 256 slots 1 : !ascend.buf<ub, 8x64xf32, nd>
  // expected-error @+1 {{index_dim must name a dimension of the GM side (rank 2)}}
  ascend.copy mte2 %table[%c0, %c0] -> %rows[%c0, %c0] sizes [1, 64] offset by %id[%c0, %c0] : !ascend.buf<ub, 8x1xf32, nd> at dim 2 : !ascend.buf<gm, 100x64xf32, nd> -> !ascend.buf<ub, 8x64xf32, nd>
}

// -----

ascend.kernel @gm_index target "910b" blocks 1 core aiv {
^bb0(%blk: index, %table: !ascend.buf<gm, 100x64xf32, nd>, %ids: !ascend.buf<gm, 8x1xf32, nd>):
  %c0 = arith.constant 0 : index
  %rows = ascend.alloc offset 256 slots 1 : !ascend.buf<ub, 8x64xf32, nd>
  // expected-error @+1 {{the index tile must be an f32 ub buffer}}
  ascend.copy mte2 %table[%c0, %c0] -> %rows[%c0, %c0] sizes [1, 64] offset by %ids[%c0, %c0] : !ascend.buf<gm, 8x1xf32, nd> at dim 0 : !ascend.buf<gm, 100x64xf32, nd> -> !ascend.buf<ub, 8x64xf32, nd>
}
