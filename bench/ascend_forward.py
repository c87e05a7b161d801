#!/usr/bin/python3
"""Whole-model forwards through the Ascend simulator (--backend=ascend-sim).

For stories260K (llama2.c, /work/shared/data) and its GateSWA and MLA
conversions, at a few prompt lengths: the kernels the forward ran in the
functional simulator and the ops left to the reference evaluator (counts
from the backend's log), the cost model's device time of the simulated
kernels on the target, the host wall time of the simulation, and the
largest logit difference from the reference evaluator (relative to
max|logit|) for bf16 and f32 Cube operands.

    bench/ascend_forward.py [--build build] [--target 910b] [--lengths 8,64,256]
                            [--out bench/results/ascend_forward.json]

A small model is all the simulator can run in reasonable time: it executes
every element and checks every access (about 10^6 simulated instructions
per second on this host).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "stories260K")
LOG = re.compile(r"ascend-sim: @forward on (\S+) \((\S+) Cube operands\): (\d+) kernels simulated "
                 r"\(([^)]*)\), modelled ([0-9.]+) us on the device; (\d+) ops on the reference "
                 r"evaluator, no Ascend lowering \(([^)]*)\)")


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit("%s failed:\n%s" % (" ".join(cmd), r.stderr))
    return r.stderr


def main():
    cli.stop_on_sigterm()
    ap = argparse.ArgumentParser(description=cli.description(__doc__))
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), type=cli.build_dir,
                    help=cli.BUILD_HELP)
    ap.add_argument("--target", default="910b")
    ap.add_argument("--lengths", default="8,64,256")
    ap.add_argument("--out", help=cli.OUT_HELP)
    args = ap.parse_args()
    args.out = args.out or cli.results_path(ap, args, "ascend_forward")
    model = os.path.join(DATA, "stories260K.bin")
    if not os.path.exists(model):
        print("skipped: %s is absent" % model)
        return
    tool = lambda name: os.path.join(args.build, "bin", name)
    with tempfile.TemporaryDirectory(prefix="ascend_forward.") as tmp:
        teacher, raised = os.path.join(tmp, "teacher.mlir"), os.path.join(tmp, "raised.mlir")
        run([tool("attnedit-import"), model, "-o", teacher])
        run([tool("attnedit-opt"), teacher, "--attnedit-raise-attention", "-o", raised])
        models = [("stories260K", teacher)]
        for name, edit in [("GateSWA W=32 (gate, sinks)",
                            "target=gate-swa window=32 gate=headwise sinks=true"),
                           ("MLA r16+4 (SVD)",
                            "target=mla kv-lora-rank=16 qk-rope-head-dim=4 init=svd")]:
            out = os.path.join(tmp, "%d.mlir" % len(models))
            run([tool("attnedit-opt"), raised, "--attnedit-edit-attention=%s params-out=%s" %
                 (edit, out.replace(".mlir", ".safetensors")), "-o", out])
            models.append((name, out))

        rows = []
        for name, path in models:
            for length in [int(x) for x in args.lengths.split(",")]:
                tokens = ",".join(str(1 + (7 * i) % 500) for i in range(length))
                ref = os.path.join(tmp, "ref.npy")
                run([tool("attnedit-run"), "forward", path, "--tokens", tokens, "--logits-out", ref,
                     "--backend=reference"])
                want = np.load(ref)
                row = {"model": name, "tokens": length}
                for dtype in ["bf16", "f32"]:
                    got = os.path.join(tmp, "%s.npy" % dtype)
                    start = time.time()
                    log = run([tool("attnedit-run"), "forward", path, "--tokens", tokens,
                               "--logits-out", got, "--backend=ascend-sim", "--ascend-target",
                               args.target, "--ascend-dtype", dtype])
                    wall = time.time() - start
                    m = LOG.search(log)
                    if not m:
                        sys.exit("no ascend-sim summary in the log:\n" + log)
                    err = float(np.max(np.abs(np.load(got) - want)) / np.max(np.abs(want)))
                    row[dtype] = {"max_rel_logit_diff": err, "wall_s": round(wall, 2)}
                    row.update({"kernels": int(m.group(3)), "kernel_kinds": m.group(4),
                                "modelled_us": float(m.group(5)), "fallback_ops": int(m.group(6)),
                                "fallback_kinds": m.group(7)})
                rows.append(row)
                print("%-28s %4d tok  kernels %3d  modelled %8.1f us  fallback ops %3d  "
                      "bf16 diff %.2e (%.1f s)  f32 diff %.2e (%.1f s)" %
                      (name, length, row["kernels"], row["modelled_us"], row["fallback_ops"],
                       row["bf16"]["max_rel_logit_diff"], row["bf16"]["wall_s"],
                       row["f32"]["max_rel_logit_diff"], row["f32"]["wall_s"]))
                sys.stdout.flush()
    print("fallbacks (last row): " + rows[-1]["fallback_kinds"])
    cli.write_json(args.out, {"target": args.target, "rows": rows})
    print("wrote " + args.out)


if __name__ == "__main__":
    main()
