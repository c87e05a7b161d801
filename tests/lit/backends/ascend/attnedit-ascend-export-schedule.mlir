// RUN: attnedit-opt %s --attnedit-ascend-lower-matmul="tiling=32,32,32,2" --attnedit-ascend-lower-vector --attnedit-ascend-export-schedule="file=%t.ascsched" -o /dev/null
// RUN: %python -c "import sys; d = open(sys.argv[1], 'rb').read(); print(d[4:8].decode(), len(d) > 1000)" %t.ascsched | FileCheck %s
// RUN: not attnedit-opt %s --attnedit-ascend-export-schedule 2>&1 | FileCheck %s --check-prefix=NOFILE
// RUN: not attnedit-opt %s --attnedit-ascend-export-schedule="file=/nonexistent/x.ascsched" 2>&1 | FileCheck %s --check-prefix=BAD

// Tests that the schedules are written as one flatbuffer with the schema's
// file identifier (runtime/schema/ascend_schedule.fbs); the round trip is
// checked by the ScheduleFlatbuffer unit tests.
// CHECK: AESC True
// NOFILE: attnedit-ascend-export-schedule: needs file=<path>
// BAD: attnedit-ascend-export-schedule: cannot write '/nonexistent/x.ascsched'
func.func @f(%x: tensor<64x96xf32>, %w: tensor<80x96xf32>) -> tensor<64x80xf32> {
  %y = attnedit.linear %x, %w : (tensor<64x96xf32>, tensor<80x96xf32>) -> tensor<64x80xf32>
  %z = attnedit.silu %y : tensor<64x80xf32>
  return %z : tensor<64x80xf32>
}
