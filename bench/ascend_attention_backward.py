#!/usr/bin/python3
"""Modelled Ascend time of attention's training step: forward and backward mix kernels.

One attention layer of Qwen3-8B's shape (32 query heads over 8 KV heads of
128), one sequence of --tokens tokens, as a training step has it: the
decomposed forward chain (repeat_kv, kᵀ, q·kᵀ, scale, causal / window mask,
softmax [with sinks], ·v) and autodiff's backward of it (dV = Pᵀ·dO, dP =
dO·Vᵀ, softmax_grad [, sink_grad], mask, scale, dQ = dS·K, dK = dSᵀ·Q, the
group sums of repeat_kv's VJP), lowered by --attnedit-ascend-lower-attention
to two launches: the flash-attention forward (which also writes each row's
log-sum-exp) and the backward mix kernel (FA-2 recompute: per pair of tiles
S and dP on the Cube, P and dS on the vector cores, dQ in a query pass, dK
and dV in a KV pass). Variants: GQA causal, and GateSWA (window --window
with sinks: only the window's tiles are visited).

Columns: modelled µs of each kernel (910B cost model), its bound (busiest
pipe), GM MB outside the cube <-> vector ring, ring MB (L2), and the Cube's
utilisation; "matmul FLOP" counts the products the backward computes (S and
dP recomputed, dV, dK, dQ: 5 products of 2·T·T'·d per head, T' the keys a
query sees on average) and "Cube %" is that over the modelled Cube peak.

    bench/ascend_attention_backward.py [--build build] [--target 910b] [--dtype bf16]
                                       [--tokens 2048] [--window 1024]
                                       [--out bench/results/ascend_attention_backward.json]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADS, KV_HEADS, HEAD_DIM = 32, 8, 128


def t(*dims):
    return "tensor<%sxf32>" % "x".join(str(d) for d in dims)


def training_module(heads, kv_heads, tokens, d, window, sinks):
    """Forward chain + autodiff's backward of it (as tests/lit/backends/ascend/
    attnedit-ascend-lower-attention.mlir's @train), static shapes."""
    rep, T = heads // kv_heads, tokens
    scale = d ** -0.5
    qs, ks, ss, ys = t(heads, T, d), t(kv_heads, T, d), t(heads, T, T), t(T, heads, d)
    kts = t(heads, d, T)
    sink_arg = ", %%sinks: %s" % t(heads) if sinks else ""
    sink_op = " sinks(%%sinks : %s)" % t(heads) if sinks else ""
    outs = [ys, qs, ks, ks] + ([t(heads)] if sinks else [])
    L = ["func.func @train(%%q: %s, %%k: %s, %%v: %s%s, %%dy: %s) -> (%s) {" % (qs, ks, ks, sink_arg, ys, ", ".join(outs)),
         "  %%kr = attnedit.repeat_kv %%k {repeats = %d : i64} : (%s) -> %s" % (rep, ks, qs),
         "  %%vr = attnedit.repeat_kv %%v {repeats = %d : i64} : (%s) -> %s" % (rep, ks, qs),
         "  %%kt = attnedit.transpose %%kr {permutation = array<i64: 0, 2, 1>} : (%s) -> %s" % (qs, kts),
         "  %%s = attnedit.matmul %%q, %%kt : (%s, %s) -> %s" % (qs, kts, ss),
         "  %%s1 = attnedit.scale %%s {factor = %r : f64} : %s" % (scale, ss),
         "  %%s2 = attnedit.causal_mask %%s1 {window = %d : i64} : %s" % (window, ss),
         "  %%p = attnedit.softmax %%s2%s {axis = 2 : i64} : %s" % (sink_op, ss),
         "  %%o = attnedit.matmul %%p, %%vr : (%s, %s) -> %s" % (ss, qs, qs),
         "  %%y = attnedit.transpose %%o {permutation = array<i64: 1, 0, 2>} : (%s) -> %s" % (qs, ys),
         "  %%do = attnedit.transpose %%dy {permutation = array<i64: 1, 0, 2>} : (%s) -> %s" % (ys, qs),
         "  %%vt = attnedit.transpose %%vr {permutation = array<i64: 0, 2, 1>} : (%s) -> %s" % (qs, kts),
         "  %%dp = attnedit.matmul %%do, %%vt : (%s, %s) -> %s" % (qs, kts, ss),
         "  %%pt = attnedit.transpose %%p {permutation = array<i64: 0, 2, 1>} : (%s) -> %s" % (ss, ss),
         "  %%dvr = attnedit.matmul %%pt, %%do : (%s, %s) -> %s" % (ss, qs, qs),
         "  %%sg = attnedit.softmax_grad %%p, %%dp {axis = 2 : i64} : %s" % ss]
    if sinks:
        L.append("  %%dsink = attnedit.sink_grad %%p, %%dp : (%s, %s) -> %s" % (ss, ss, t(heads)))
    flat = t(kv_heads, rep, T * d)
    L += ["  %%m = attnedit.causal_mask %%sg {window = %d : i64, zero_fill} : %s" % (window, ss),
          "  %%ds = attnedit.scale %%m {factor = %r : f64} : %s" % (scale, ss),
          "  %%kk = attnedit.transpose %%kt {permutation = array<i64: 0, 2, 1>} : (%s) -> %s" % (kts, qs),
          "  %%dq = attnedit.matmul %%ds, %%kk : (%s, %s) -> %s" % (ss, qs, qs),
          "  %%qt = attnedit.transpose %%q {permutation = array<i64: 0, 2, 1>} : (%s) -> %s" % (qs, kts),
          "  %%dkt = attnedit.matmul %%qt, %%ds : (%s, %s) -> %s" % (kts, ss, kts),
          "  %%dkr = attnedit.transpose %%dkt {permutation = array<i64: 0, 2, 1>} : (%s) -> %s" % (kts, qs),
          "  %%dv3 = attnedit.reshape %%dvr : (%s) -> %s" % (qs, flat),
          "  %%dv2 = attnedit.reduce_sum %%dv3 {axis = 1 : i64} : (%s) -> %s" % (flat, t(kv_heads, T * d)),
          "  %%dv = attnedit.reshape %%dv2 : (%s) -> %s" % (t(kv_heads, T * d), ks),
          "  %%dk3 = attnedit.reshape %%dkr : (%s) -> %s" % (qs, flat),
          "  %%dk2 = attnedit.reduce_sum %%dk3 {axis = 1 : i64} : (%s) -> %s" % (flat, t(kv_heads, T * d)),
          "  %%dk = attnedit.reshape %%dk2 : (%s) -> %s" % (t(kv_heads, T * d), ks)]
    rets = ["%y", "%dq", "%dk", "%dv"] + (["%dsink"] if sinks else [])
    L += ["  return %s : %s" % (", ".join(rets), ", ".join(outs)), "}"]
    return "\n".join(L) + "\n"


def main():
    cli.stop_on_sigterm()
    ap = argparse.ArgumentParser(description=cli.description(__doc__))
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), type=cli.build_dir,
                    help=cli.BUILD_HELP)
    ap.add_argument("--target", default="910b")
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--tokens", type=cli.positive_int, default=2048)
    ap.add_argument("--window", type=cli.positive_int, default=1024)
    ap.add_argument("--out", help=cli.OUT_HELP)
    a = ap.parse_args()
    a.out = a.out or cli.results_path(ap, a, "ascend_attention_backward")
    tool = os.path.join(a.build, "bin", "attnedit-opt")
    T = a.tokens
    variants = [("GQA causal", 0, False), ("GateSWA W=%d, sinks" % a.window, a.window, True)]
    rows = []
    print("%s, one layer of Qwen3-8B's attention (32 q heads, 8 KV heads, d 128), %d tokens, %s" % (
        a.target, T, a.dtype))
    print("%-22s %-9s %9s %6s %9s %9s %7s %7s %7s" % (
        "variant", "kernel", "us", "bound", "GM MB", "ring MB", "cube %", "vec %", "mte2 %"))
    with tempfile.TemporaryDirectory() as tmp:
        for name, window, sinks in variants:
            src, rep, til = (os.path.join(tmp, f) for f in ("a.mlir", "r.json", "t.json"))
            open(src, "w").write(training_module(HEADS, KV_HEADS, T, HEAD_DIM, window, sinks))
            done = subprocess.run([tool, src, "-o", os.devnull, "--attnedit-ascend-lower-attention=dtype=%s target=%s" % (
                a.dtype, a.target), "--attnedit-ascend-estimate=report=%s tcube-tiling=%s" % (rep, til)],
                                  capture_output=True, text=True)
            if done.returncode:
                sys.exit("attnedit-opt failed:\n" + done.stderr)
            tilings = {x["kernel"]: x["TCubeTiling"] for x in json.load(open(til))["tilings"]}
            # Keys a query sees on average: causal (T + 1) / 2, a window at most W.
            seen = sum(min(q + 1, window) if window else q + 1 for q in range(T)) / T
            row = {"variant": name, "tokens": T, "window": window, "sinks": sinks,
                   "matmul_flop_backward": 5 * 2 * HEADS * T * seen * HEAD_DIM, "kernels": []}
            for k in json.load(open(rep))["kernels"]:
                kind = "backward" if k["kernel"].endswith("_grad") else "forward"
                u = k["utilisation"]
                ring = k["workspace_bytes"]
                row["kernels"].append({"kind": kind, "seconds": k["seconds"], "bound": k["bound"],
                                       "gm_bytes": k["gm_bytes"] - ring, "ring_bytes": ring,
                                       "roofline_seconds": k["roofline_seconds"], "utilisation": u,
                                       "tiling": tilings.get(k["kernel"], {})})
                print("%-22s %-9s %9.1f %6s %9.1f %9.1f %6.1f%% %6.1f%% %6.1f%%" % (
                    name, kind, k["seconds"] * 1e6, k["bound"], (k["gm_bytes"] - ring) / 1e6, ring / 1e6,
                    100 * u.get("m", 0), 100 * u.get("v", 0), 100 * u.get("mte2", 0)))
            rows.append(row)
    cli.write_json(a.out, {"target": a.target, "dtype": a.dtype, "tokens": T, "rows": rows}, 1)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
