// RUN: attnedit-opt %s --attnedit-ascend-lower-matmul="tiling=32,32,32,2" --attnedit-ascend-lower-vector --attnedit-ascend-export-schedule="file=%t.ascsched" -o /dev/null
// RUN: %python -c "import sys; d = open(sys.argv[1], 'rb').read(); print(d[4:8].decode(), len(d) > 1000)" %t.ascsched | FileCheck %s
// RUN: not attnedit-opt %s --attnedit-ascend-export-schedule 2>&1 | FileCheck %s --check-prefix=NOFILE
// RUN: not attnedit-opt %s --attnedit-ascend-export-schedule="file=/nonexistent/x.ascsched" 2>&1 | FileCheck %s --check-prefix=BAD

// Tests that the schedules are written as one flatbuffer with the schema's
// file identifier (runtime/schema/ascend_schedule.fbs); the round trip is
// checked by the ScheduleFlatbuffer unit tests.
// CHECK: AESC True
// NOFILE: attnedit-ascend-export-schedule: needs file=<path>
// BAD: attnedit-ascend-export-schedule: /nonexistent/x.ascsched: cannot write:
func.func @f(%x: tensor<64x96xf32>, %w: tensor<80x96xf32>) -> tensor<64x80xf32> {
  %y = attnedit.linear %x, %w : (tensor<64x96xf32>, tensor<80x96xf32>) -> tensor<64x80xf32>
  %z = attnedit.silu %y : tensor<64x80xf32>
  return %z : tensor<64x80xf32>
}

// The pipeline writes all four artefacts in one run (schedule=, ascendc=,
// tcube-tiling=, trace=): a flash-attention mix kernel's here. The trace's spans
// once carried their op's location as a reference into a schedule already
// freed (invalid UTF-8 a trace viewer rejects); they hold a copy.
// RUN: attnedit-opt %S/Inputs/attention.mlir --attnedit-ascend-pipeline="target=910b schedule=%t.p.ascsched ascendc=%t.p.cpp tcube-tiling=%t.p.tiling.json trace=%t.p.trace.json" -o /dev/null
// RUN: %python %S/Inputs/check_artefacts.py %t.p.ascsched %t.p.cpp %t.p.tiling.json %t.p.trace.json | FileCheck %s --check-prefix=PIPE
// PIPE: schedule AESC True
// PIPE-NEXT: ascendc kernels 1
// PIPE-NEXT: tiling ['baseK', 'baseN', 'qTile']
// PIPE-NEXT: trace spans True True
