#!/usr/bin/python3
"""Modelled Ascend time of the ops of one Qwen3-8B-shaped decoder layer.

Lowers the layer's seven projections (q, k, v, o, gate, up, down) and its
row-wise ops (input/post RMSNorm, per-head q/k RMSNorm, q/k RoPE, SiLU·mul,
the two residual adds) with --attnedit-ascend-pipeline for prefill at 4K tokens and
decode at batch 32 (one token each), and prints, per op, the cost model's
time, bounding pipe, Cube / Vector / MTE2 utilisation, fraction of the Cube
peak and the roofline time (max of Cube time at peak and compulsory GM
traffic at full HBM bandwidth).

    bench/ascend_layer.py [--build build] [--target 910b] [--dtype bf16] [--no-fuse] [--out bench/results/ascend_layer.json]

The q, k and v projections read the same input (the normed hidden state),
and so do gate and up: --attnedit-ascend-lower-matmul lowers each such set
as one Cube kernel over the weights side by side along N (fuse-shared-input,
the fused QKV / gate-up GEMM of serving stacks), one row of the table.
--no-fuse lowers every projection alone (k / v then have 128 tiles of
256x128 for 24 cube cores and re-read x only 8 times through L2).

The layer's attention is the flash-attention MIX kernel that
--attnedit-ascend-lower-attention makes of the decomposed chain (repeat_kv,
kᵀ, q·kᵀ, scale, causal mask, softmax, ·v, transpose; built as
bench/ascend_decode_attention.py builds it): causal over the 4K tokens in
prefill, and in decode one query per sequence against 4K tokens of context
for each of the 32 sequences. It is lowered on its own (its inputs stand for
the roped q, k and v) and placed between k_rope and o_proj; "peak" is then
the fraction of the Cube peak its QKᵀ and PV products reach. On a target
without separated cores (--target 910a) there is no MIX kernel: the row sums
the chain's kernels (scores GEMM, softmax, PV GEMM, S and P through GM).
bench/ascend_decode_attention.py compares it with MLA and GateSWA.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from ascend_decode_attention import chain_module  # noqa: E402
import cli  # noqa: E402  (bench/cli.py: the shared argument types)

CONTEXT = 4096  # decode: tokens of context per sequence
CONFIG = os.path.join(ROOT, "bench", "configs", "qwen3-8b", "config.json")


def layer_module(tokens, cfg):
    """The GEMMs and row-wise ops of one layer, in execution order, as one
    function whose arguments stand for the activations and weights."""
    d, h, kv, hd, ff = (cfg["hidden_size"], cfg["num_attention_heads"],
                        cfg["num_key_value_heads"], cfg["head_dim"], cfg["intermediate_size"])
    t = lambda *dims: "tensor<%sxf32>" % "x".join(str(x) for x in dims)
    ops = [  # (name, kind, shapes); linears with the same input in one group
        ("input_norm", "rms_norm", (tokens, d)),
        ("q_proj", "linear", (tokens, d, h * hd), "attn_in"), ("k_proj", "linear", (tokens, d, kv * hd), "attn_in"),
        ("v_proj", "linear", (tokens, d, kv * hd), "attn_in"),
        ("q_norm", "rms_norm", (tokens * h, hd)), ("k_norm", "rms_norm", (tokens * kv, hd)),
        ("q_rope", "rope", (tokens, h, hd)), ("k_rope", "rope", (tokens, kv, hd)),
        ("o_proj", "linear", (tokens, h * hd, d)), ("residual_1", "add", (tokens, d)),
        ("post_norm", "rms_norm", (tokens, d)),
        ("gate_proj", "linear", (tokens, d, ff), "mlp_in"), ("up_proj", "linear", (tokens, d, ff), "mlp_in"),
        ("silu_mul", "silu_mul", (tokens, ff)),
        ("down_proj", "linear", (tokens, ff, d)), ("residual_2", "add", (tokens, d)),
    ]
    args, body, results, inputs = [], [], [], {}
    for i, (name, kind, shp, *group) in enumerate(ops):
        if kind == "linear":
            m, k, n = shp
            if group and group[0] in inputs:  # the group's input, shared
                x = inputs[group[0]]
            else:
                x = "%%x%d" % i
                args.append("%s: %s" % (x, t(m, k)))
                inputs.update({group[0]: x} if group else {})
            args.append("%%w%d: %s" % (i, t(n, k)))
            body.append("  %%y%d = attnedit.linear %s, %%w%d : (%s, %s) -> %s" % (i, x, i, t(m, k), t(n, k), t(m, n)))
            results.append(("%%y%d" % i, t(m, n)))
        elif kind == "rms_norm":
            r, c = shp
            args += ["%%x%d: %s" % (i, t(r, c)), "%%w%d: %s" % (i, t(c))]
            body.append("  %%y%d = attnedit.rms_norm %%x%d, %%w%d {eps = 1.0e-6 : f64} : (%s, %s) -> %s"
                        % (i, i, i, t(r, c), t(c), t(r, c)))
            results.append(("%%y%d" % i, t(r, c)))
        elif kind == "rope":
            T, H, D = shp
            args += ["%%x%d: %s" % (i, t(T, H, D)), "%%p%d: tensor<%dxi32>" % (i, T)]
            body.append("  %%y%d = attnedit.rope %%x%d, %%p%d {theta = %s : f64, rotary_dim = %d : i64, "
                        "style = #attnedit<rope_style rotate_half>} : (%s, tensor<%dxi32>) -> %s"
                        % (i, i, i, float(cfg["rope_theta"]), D, t(T, H, D), T, t(T, H, D)))
            results.append(("%%y%d" % i, t(T, H, D)))
        elif kind == "add":
            args += ["%%x%d: %s" % (i, t(*shp)), "%%z%d: %s" % (i, t(*shp))]
            body.append("  %%y%d = attnedit.add %%x%d, %%z%d : %s" % (i, i, i, t(*shp)))
            results.append(("%%y%d" % i, t(*shp)))
        else:  # silu_mul
            args += ["%%x%d: %s" % (i, t(*shp)), "%%z%d: %s" % (i, t(*shp))]
            body.append("  %%s%d = attnedit.silu %%x%d : %s" % (i, i, t(*shp)))
            body.append("  %%y%d = attnedit.mul %%s%d, %%z%d : %s" % (i, i, i, t(*shp)))
            results.append(("%%y%d" % i, t(*shp)))
    text = "func.func @layer(%s) -> (%s) {\n%s\n  return %s : %s\n}\n" % (
        ", ".join(args), ", ".join(ty for _, ty in results), "\n".join(body),
        ", ".join(v for v, _ in results), ", ".join(ty for _, ty in results))
    return text, ops


def launched(ops, fuse):
    """The ops as the lowering launches them: with fusion, the linears of one
    input group as one GEMM over their weights side by side (named a/b/c_proj,
    N the sum)."""
    out = []
    for name, kind, shp, *group in ops:
        prev = out[-1] if out else None
        if fuse and group and prev and prev[3] == group[0]:
            stem = prev[0][:-len("_proj")]
            out[-1] = ("%s/%s_proj" % (stem, name[:-len("_proj")]), kind,
                       (shp[0], shp[1], prev[2][2] + shp[2]), group[0])
        else:
            out.append((name, kind, shp, group[0] if group else None))
    return [op[:3] for op in out]


def attention(tool, tmp, tokens, decode, cfg, target, dtype):
    """The layer's attention as one fused kernel: its report entry and the op row's shape."""
    h, kv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    if decode:  # every sequence's heads are groups of their own, one query each
        module = chain_module(tokens * h, tokens * kv, 1, CONTEXT, hd, hd, 0, hd ** -0.5)
        shape = (tokens, h, CONTEXT, hd)
    else:
        module = chain_module(h, kv, tokens, tokens, hd, hd, 0, hd ** -0.5)
        shape = (tokens, h, tokens, hd)
    src, rep = os.path.join(tmp, "attn.mlir"), os.path.join(tmp, "attn.json")
    open(src, "w").write(module)
    done = subprocess.run([tool, src, "-o", os.devnull, "--attnedit-ascend-pipeline=target=%s dtype=%s report=%s"
                           % (target, dtype, rep)], capture_output=True, text=True)
    if done.returncode:
        sys.exit("attnedit-opt failed on the attention chain:\n" + done.stderr)
    kernels = json.load(open(rep))["kernels"]
    if len(kernels) == 1 and kernels[0]["kernel"].startswith("attention"):
        return kernels[0], shape
    # A target without separated cores (the 910A) has no flash-attention
    # kernel: the chain's kernels (scores GEMM, softmax, PV GEMM) one after
    # another, their utilisations and Cube-peak fractions weighted by time.
    total = sum(k["seconds"] for k in kernels)
    pipes = {p for k in kernels for p in k["utilisation"]}
    longest = max(kernels, key=lambda k: k["seconds"])
    return {"kernel": "+".join(k["kernel"] for k in kernels), "seconds": total, "bound": longest["bound"],
            "utilisation": {p: sum(k["utilisation"].get(p, 0) * k["seconds"] for k in kernels) / total
                            for p in pipes},
            "cube_peak_fraction": sum(k["cube_peak_fraction"] * k["seconds"] for k in kernels) / total,
            "roofline_seconds": sum(k["roofline_seconds"] for k in kernels),
            "unfused": [k["kernel"] for k in kernels]}, shape


def main():
    cli.stop_on_sigterm()
    ap = argparse.ArgumentParser(description=cli.description(__doc__))
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), type=cli.build_dir,
                    help=cli.BUILD_HELP)
    ap.add_argument("--target", default="910b")
    ap.add_argument("--dtype", default="bf16", help="GEMM operand type: bf16, or f16 (the 910a has no bf16 Cube)")
    ap.add_argument("--no-fuse", action="store_true",
                    help="lower q/k/v and gate/up one by one instead of as GEMMs sharing their input")
    ap.add_argument("--out", help=cli.OUT_HELP)
    a = ap.parse_args()
    a.out = a.out or cli.results_path(ap, a, "ascend_layer")
    tool = os.path.join(a.build, "bin", "attnedit-opt")
    cfg = json.load(open(CONFIG))
    results = {"target": a.target, "model": "Qwen3-8B layer (bench/configs/qwen3-8b)",
               "fuse_shared_input": not a.no_fuse, "scenarios": []}
    with tempfile.TemporaryDirectory() as tmp:
        for scenario, tokens, decode in (("prefill 4K tokens", 4096, False),
                                         ("decode batch 32, 4K context", 32, True)):
            text, ops = layer_module(tokens, cfg)
            ops = launched(ops, not a.no_fuse)
            src, rep, til, out = (os.path.join(tmp, f) for f in ("layer.mlir", "report.json", "tiling.json", "out.mlir"))
            open(src, "w").write(text)
            start = time.perf_counter()
            done = subprocess.run([tool, src, "-o", out,
                                   "--attnedit-ascend-pipeline=target=%s dtype=%s report=%s tcube-tiling=%s "
                                   "fuse-shared-input=%s"
                                   % (a.target, a.dtype, rep, til, str(not a.no_fuse).lower())],
                                  capture_output=True, text=True)
            compile_s = time.perf_counter() - start
            if done.returncode:
                sys.exit("attnedit-opt failed:\n" + done.stderr)
            kernels = {k["kernel"]: k for k in json.load(open(rep))["kernels"]}
            tilings = {t["kernel"]: t["TCubeTiling"] for t in json.load(open(til))["tilings"]}
            lowered = open(out).read()
            launches = [line.split("ascend.launch @")[1].split("(")[0]
                        for line in lowered.splitlines() if "ascend.launch @" in line]
            if len(launches) != len(ops):
                sys.exit("expected %d launches, got %d:\n%s" % (len(ops), len(launches), done.stderr))
            print("\n%s, %s: %d tokens (compile + tile search %.1f s)" % (a.target, scenario, tokens, compile_s))
            print("%-15s %-22s %10s %6s %6s %6s %6s %7s %10s  %s" % (
                "op", "shape", "time us", "bound", "cube", "vec", "mte2", "peak", "roofline", "tile"))
            attn, attn_shape = attention(tool, tmp, tokens, decode, cfg, a.target, a.dtype)
            kernels[attn["kernel"]] = attn
            at = next(i for i, op in enumerate(ops) if op[0] == "o_proj")
            ops.insert(at, ("attention", "flash_attention", attn_shape))
            launches.insert(at, attn["kernel"])
            rows, total = [], 0.0
            for (name, kind, shp), kname in zip(ops, launches):
                e = kernels[kname]
                u = e["utilisation"]
                total += e["seconds"]
                if kind == "flash_attention":
                    tile = ("unfused, %d kernels" % len(e["unfused"]) if "unfused" in e
                            else "fused, ctx %d" % shp[2])
                elif kname in tilings:
                    t = tilings[kname]
                    tile = "%d,%d,%d x%d" % (t["baseM"], t["baseN"], t["baseK"], t["stepKa"])
                else:
                    tile = "rows/tile %s" % lowered.split("ascend.kernel @%s " % kname)[1].split("ascend.tile_rows = ")[1].split(" ")[0]
                row = {"op": name, "kind": kind, "shape": list(shp), "kernel": kname, "seconds": e["seconds"],
                       "bound": e["bound"], "utilisation": u, "cube_peak_fraction": e["cube_peak_fraction"],
                       "roofline_seconds": e["roofline_seconds"], "tile": tile}
                rows.append(row)
                print("%-15s %-22s %10.1f %6s %5.0f%% %5.0f%% %5.0f%% %6.1f%% %10.1f  %s" % (
                    name, "x".join(map(str, shp)), e["seconds"] * 1e6, e["bound"], 100 * u.get("m", 0),
                    100 * u.get("v", 0), 100 * u.get("mte2", 0), 100 * e["cube_peak_fraction"],
                    e["roofline_seconds"] * 1e6, tile))
            print("%-38s %10.1f us" % ("layer total", total * 1e6))
            results["scenarios"].append({"scenario": scenario, "tokens": tokens, "ops": rows,
                                         "layer_seconds": total, "compile_seconds": compile_s})
    cli.write_json(a.out, results, 1)
    print("\nwrote", a.out)


if __name__ == "__main__":
    main()
