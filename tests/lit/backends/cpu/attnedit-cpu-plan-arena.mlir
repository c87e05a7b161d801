// RUN: attnedit-opt %s --attnedit-cpu-plan-arena | FileCheck %s

// Tests the static memory plan: intermediates become views of one arena
// argument at offsets from their live ranges (a buffer dead before another
// is born shares its bytes, 64-byte aligned), the function records the
// arena's size, and a buffer that reaches the return through a view, or
// has a dynamic shape, stays an allocation.
#id = affine_map<(i) -> (i)>
// CHECK-LABEL: func.func @chain
// CHECK-SAME: (%[[A:.*]]: memref<16xf32>, %[[ARENA:.*]]: memref<192xi8> {attnedit.arena}) -> memref<4x4xf32>
// CHECK-SAME: attributes {attnedit.arena_bytes = 192 : i64}
// The largest buffer first, at 0; the two small ones live together after it.
// CHECK: %[[C0:.*]] = arith.constant 0 : index
// CHECK: %[[BIG:.*]] = memref.view %[[ARENA]][%[[C0]]][] : memref<192xi8> to memref<32xf32>
// CHECK: %[[C128:.*]] = arith.constant 128 : index
// CHECK: %[[B:.*]] = memref.view %[[ARENA]][%[[C128]]][] : memref<192xi8> to memref<16xf32>
// CHECK: %[[C0b:.*]] = arith.constant 0 : index
// CHECK: %[[C:.*]] = memref.view %[[ARENA]][%[[C0b]]][] : memref<192xi8> to memref<16xf32>
// CHECK: %[[OUT:.*]] = memref.alloc() : memref<16xf32>
// CHECK: %[[R:.*]] = memref.expand_shape %[[OUT]]
// CHECK: return %[[R]]
func.func @chain(%a: memref<16xf32>) -> memref<4x4xf32> {
  %cst = arith.constant 0.0 : f32
  %big = memref.alloc() : memref<32xf32>
  linalg.fill ins(%cst : f32) outs(%big : memref<32xf32>)
  %b = memref.alloc() : memref<16xf32>
  %sub = memref.subview %big[0] [16] [1] : memref<32xf32> to memref<16xf32, strided<[1]>>
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
      ins(%sub : memref<16xf32, strided<[1]>>) outs(%b : memref<16xf32>) {
  ^bb0(%x: f32, %y: f32):
    linalg.yield %x : f32
  }
  // %big is dead from here: %c takes its bytes; %b is still live.
  %c = memref.alloc() : memref<16xf32>
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
      ins(%b : memref<16xf32>) outs(%c : memref<16xf32>) {
  ^bb0(%x: f32, %y: f32):
    linalg.yield %x : f32
  }
  %out = memref.alloc() : memref<16xf32>
  linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel"]}
      ins(%b, %c : memref<16xf32>, memref<16xf32>) outs(%out : memref<16xf32>) {
  ^bb0(%x: f32, %z: f32, %y: f32):
    %s = arith.addf %x, %z : f32
    linalg.yield %s : f32
  }
  %r = memref.expand_shape %out [[0, 1]] output_shape [4, 4] : memref<16xf32> into memref<4x4xf32>
  return %r : memref<4x4xf32>
}

// CHECK-LABEL: func.func @dynamic
// CHECK-SAME: %{{.*}}: memref<64xi8> {attnedit.arena}
// CHECK-SAME: attributes {attnedit.arena_bytes = 0 : i64}
// CHECK: memref.alloc(%{{.*}}) : memref<?xf32>
func.func @dynamic(%n: index) {
  %d = memref.alloc(%n) : memref<?xf32>
  memref.dealloc %d : memref<?xf32>
  return
}
