// RUN: attnedit-opt %s --attnedit-ascend-lower-matmul="tiling=128,128,64,4" --attnedit-ascend-estimate="report=%t.report.json trace=%t.trace.json tcube-tiling=%t.tiling.json" | FileCheck %s
// RUN: FileCheck %s --check-prefix=REPORT < %t.report.json
// RUN: FileCheck %s --check-prefix=TRACE < %t.trace.json
// RUN: FileCheck %s --check-prefix=TILING < %t.tiling.json
// RUN: not attnedit-opt %s --attnedit-ascend-lower-matmul="tiling=128,128,64,4" --attnedit-ascend-estimate="report=/nonexistent/dir/r.json" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not attnedit-opt %s --attnedit-ascend-estimate="report=%t.none.json" 2>&1 | FileCheck %s --check-prefix=NONE
// RUN: attnedit-opt %s --attnedit-ascend-lower-matmul="tiling=128,128,64,4" --attnedit-ascend-estimate="report=- sensitivity=true" -o /dev/null | FileCheck %s --check-prefix=SENS
// RUN: sed -e 's/"name": "910b"/"name": "slow"/' -e 's/"value": 1.8e9,/"value": 1.8e8,/' -e 's/"value": 1.5e12,/"value": 1.5e10,/' %S/../../../../backends/ascend/targets/910b.json > %t.slow.json
// RUN: attnedit-opt %s --attnedit-ascend-lower-matmul="target=%t.slow.json tiling=128,128,64,4" --attnedit-ascend-estimate="report=%t.slow.report.json" | FileCheck %s --check-prefix=FILE
// RUN: FileCheck %s --check-prefix=FILEREPORT < %t.slow.report.json
// RUN: %python -c "import json, sys; s = [json.load(open(f))['kernels'][0]['seconds'] for f in sys.argv[1:]]; sys.exit(not s[1] > 5 * s[0])" %t.report.json %t.slow.report.json

// Tests that every kernel gets its estimate: time, the bounding pipe, per-pipe
// utilisation and the roofline. A 1024^3 GEMM on 64 tiles of 128x128 over 24
// cores (3 rounds of tasks), bound by MTE2: a 128x128 tile moves
// (128 + 128) x 64 x 2 bytes per 256 Cube cycles (128 B/cycle), more than
// the core's modelled share of L2 and HBM.
// CHECK-LABEL: ascend.kernel @linear_0
// CHECK-SAME: ascend.estimate = {bound = "mte2", cube_peak_fraction = {{.*}}, cycles = {{.*}}, roofline_seconds = {{.*}}, seconds = {{.*}}, utilisation = {fix = {{.*}}, m = {{.*}}, mte1 = {{.*}}, mte2 = {{.*}}}}

// Tests that a target file is what the kernel is verified, scheduled and
// timed against, not the built-in of its "name" nor an unknown name: the
// kernel carries the file, and a 10x slower clock and 100x slower HBM make
// the same GEMM over 5x slower (it was timed as the 910B; renamed "slow",
// every kernel failed "unknown Ascend target 'slow'").
// FILE: ascend.kernel @linear_0 target "{{.*}}.slow.json"
// FILEREPORT: "target": "{{.*}}.slow.json"

// REPORT: "kernels": [
// REPORT: "bound": "mte2",
// REPORT: "cores": 24,
// REPORT: "flops": 2147483648,
// REPORT: "kernel": "linear_0",
// REPORT: "unique_gm_bytes": 6291456,
// REPORT: "utilisation": {

// TRACE: "traceEvents": [
// TRACE: "name": "process_name"
// TRACE: "name": "MTE2"
// TRACE: "cat": "mte2",
// TRACE: "name": "copy gm->l1",
// TRACE: "ph": "X",
// TRACE: "name": "mmad",

// TILING: "tilings": [
// TILING: "TCubeTiling": {
// TILING-DAG: "M": 1024,
// TILING-DAG: "baseK": 64,
// TILING-DAG: "baseM": 128,
// TILING-DAG: "baseN": 128,
// TILING-DAG: "depthA1": 8,
// TILING-DAG: "stepKa": 4,
// TILING-DAG: "usedCoreNum": 24
// TILING: "kernel": "linear_0",
// TILING: "target": "910b"

// BAD: attnedit-ascend-estimate: report=/nonexistent/dir/r.json: cannot write:

// Without the lowerings nothing is timed: an error, not an empty report.
// NONE: error: 1 attnedit op computes outside every kernel (attnedit.linear), not lowered: there is no kernel to time

// Tests the sensitivity to the estimated ([E]) numbers (research 11.4):
// this MTE2-bound GEMM depends most on the assumed L2 rate, and halving it
// slows the kernel.
// SENS: "sensitivity": [
// SENS-NEXT: {
// SENS-NEXT: "number": "l2_bytes_per_cycle",
// SENS-NEXT: "x0.5": 0.{{[1-9]}}
func.func @f(%x: tensor<1024x1024xf32>, %w: tensor<1024x1024xf32>) -> tensor<1024x1024xf32> {
  %y = attnedit.linear %x, %w : (tensor<1024x1024xf32>, tensor<1024x1024xf32>) -> tensor<1024x1024xf32>
  return %y : tensor<1024x1024xf32>
}
