#!/usr/bin/python3
"""Modelled Ascend decode-attention time and GM bytes: GQA vs MLA vs GateSWA.

One decode step (one new token per sequence, batch 32) of one attention layer
of Qwen3-8B's shape, at 4K and 32K tokens of context, for
  - GQA: 32 query heads over 8 KV heads of 128 (the base model);
  - MLA: absorbed decode over a latent cache of kv_lora_rank 512 plus a
    64-wide RoPE key (DeepSeek-V2's sizes), 32 heads;
  - GateSWA: GQA on a sliding-window layer that keeps the last W tokens.
Each is timed twice by the cost model (bench/ascend_layer.py explains the
columns):
  - unfused: scores (Cube matmul), softmax over the context (Vector
    kernel), weighted sum (Cube matmul), the K cache read in a [D, ctx]
    layout, scores and probabilities making a GM round trip;
  - fused: the decomposed attention chain (repeat_kv, kᵀ, q·kᵀ, scale,
    causal / window mask, softmax, ·v) lowered by
    --attnedit-ascend-lower-attention to one flash-attention MIX kernel
    (cube core + two vector cores per block, QKᵀ tiles, P and O_tmp through
    an L2-resident GM ring, cross-core flags), K and V read once per KV head
    in place; MLA reads V from the latent K tile in L1.
Bytes: "GM" is every GM transfer of the kernels (re-reads that the cost
model's L2 rule serves from L2 included); for the fused kernel "GM"
excludes the cube <-> vector ring and, with KV splits (SplitKV / flash
decoding: a sequence's context in parts on several cores, combined after a
sync_all), the parts' partial outputs, which are "ring" (L2-resident, timed
at the L2 rate). "splits" is the KV split the tiling search chose.

Then prefill at --prefill tokens of one sequence through the fused kernel:
GQA causal, GateSWA (the window's KV tiles only), MLA prefill (per-head
keys of 128 + 64 and values of 128).

    bench/ascend_decode_attention.py [--build build] [--target 910b] [--dtype bf16] [--window 1024]
                                     [--prefill 4096] [--out bench/results/ascend_decode_attention.json]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH, HEADS, KV_HEADS, HEAD_DIM = 32, 32, 8, 128
LORA, ROPE = 512, 64


def t(*dims):
    return "tensor<%sxf32>" % "x".join(str(d) for d in dims)


def attention_module(groups, m, k, n, v):
    """softmax(Q·K) · V batched over `groups`: Q [g, m, k], K [g, k, n], V [g, n, v]."""
    return ("func.func @attn(%%q: %s, %%k: %s, %%v: %s) -> %s {\n"
            "  %%s = attnedit.matmul %%q, %%k : (%s, %s) -> %s\n"
            "  %%p = attnedit.softmax %%s {axis = 2 : i64} : %s\n"
            "  %%o = attnedit.matmul %%p, %%v : (%s, %s) -> %s\n"
            "  return %%o : %s\n}\n") % (
        t(groups, m, k), t(groups, k, n), t(groups, n, v), t(groups, m, v),
        t(groups, m, k), t(groups, k, n), t(groups, m, n), t(groups, m, n),
        t(groups, m, n), t(groups, n, v), t(groups, m, v), t(groups, m, v))


def chain_module(heads, kv_heads, tq, tk, dk, dv, window, scale, value_from_key=False):
    """The decomposed attention chain attnedit's decompositions build (PrimitiveBuilder::attend),
    q [heads, tq, dk], k [kv_heads, tk, dk], v [kv_heads, tk, dv] (value_from_key: the first dv
    columns of k, MLA's absorbed form)."""
    rep = heads // kv_heads
    lines = ["func.func @attn(%%q: %s, %%k: %s%s) -> %s {" % (
        t(heads, tq, dk), t(kv_heads, tk, dk), "" if value_from_key else ", %%v: %s" % t(kv_heads, tk, dv),
        t(tq, heads, dv))]
    if value_from_key:
        lines.append("  %%v = attnedit.slice %%k {axis = 2 : i64, offset = 0 : i64, size = %d : i64} : (%s) -> %s" % (
            dv, t(kv_heads, tk, dk), t(kv_heads, tk, dv)))
    k, v = "%k", "%v"
    if rep > 1:
        lines.append("  %%kr = attnedit.repeat_kv %%k {repeats = %d : i64} : (%s) -> %s" % (rep, t(kv_heads, tk, dk), t(heads, tk, dk)))
        lines.append("  %%vr = attnedit.repeat_kv %%v {repeats = %d : i64} : (%s) -> %s" % (rep, t(kv_heads, tk, dv), t(heads, tk, dv)))
        k, v = "%kr", "%vr"
    s3 = t(heads, tq, tk)
    lines += [
        "  %%kt = attnedit.transpose %s {permutation = array<i64: 0, 2, 1>} : (%s) -> %s" % (k, t(heads, tk, dk), t(heads, dk, tk)),
        "  %%s = attnedit.matmul %%q, %%kt : (%s, %s) -> %s" % (t(heads, tq, dk), t(heads, dk, tk), s3),
        "  %%s1 = attnedit.scale %%s {factor = %r : f64} : %s" % (scale, s3),
        "  %%s2 = attnedit.causal_mask %%s1 {window = %d : i64} : %s" % (window, s3),
        "  %%p = attnedit.softmax %%s2 {axis = 2 : i64} : %s" % s3,
        "  %%o = attnedit.matmul %%p, %s : (%s, %s) -> %s" % (v, s3, t(heads, tk, dv), t(heads, tq, dv)),
        "  %%y = attnedit.transpose %%o {permutation = array<i64: 1, 0, 2>} : (%s) -> %s" % (t(heads, tq, dv), t(tq, heads, dv)),
        "  return %%y : %s" % t(tq, heads, dv), "}"]
    return "\n".join(lines) + "\n"


def fused_variants(ctx, window):
    """Decode, one token per sequence: the batch's sequences are KV-head groups of their own."""
    scale = HEAD_DIM ** -0.5
    return [
        ("GQA", chain_module(BATCH * HEADS, BATCH * KV_HEADS, 1, ctx, HEAD_DIM, HEAD_DIM, 0, scale)),
        ("MLA", chain_module(BATCH * HEADS, BATCH, 1, ctx, LORA + ROPE, LORA, 0, (LORA + ROPE) ** -0.5, True)),
        # The window layer's cache holds its last W tokens (a ring).
        ("GateSWA W=%d" % window, chain_module(BATCH * HEADS, BATCH * KV_HEADS, 1, min(ctx, window), HEAD_DIM,
                                               HEAD_DIM, window, scale)),
    ]


def prefill_variants(tokens, window):
    scale = HEAD_DIM ** -0.5
    return [
        ("GQA", chain_module(HEADS, KV_HEADS, tokens, tokens, HEAD_DIM, HEAD_DIM, 0, scale)),
        ("MLA", chain_module(HEADS, HEADS, tokens, tokens, HEAD_DIM + ROPE, HEAD_DIM, 0, (HEAD_DIM + ROPE) ** -0.5)),
        ("GateSWA W=%d" % window, chain_module(HEADS, KV_HEADS, tokens, tokens, HEAD_DIM, HEAD_DIM, window, scale)),
    ]


def run_pipeline(tool, tmp, module, target, dtype):
    """The kernels' report and their tilings (TCubeTiling-style fields by kernel)."""
    src, rep, til = os.path.join(tmp, "a.mlir"), os.path.join(tmp, "r.json"), os.path.join(tmp, "t.json")
    open(src, "w").write(module)
    done = subprocess.run([tool, src, "-o", os.devnull,
                           "--attnedit-ascend-pipeline=target=%s dtype=%s report=%s tcube-tiling=%s" % (
                               target, dtype, rep, til)],
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit("attnedit-opt failed:\n" + done.stderr)
    tilings = {t["kernel"]: t["TCubeTiling"] for t in json.load(open(til))["tilings"]}
    return json.load(open(rep))["kernels"], tilings


def fused_row(tool, tmp, a, name, module, phase, ctx):
    ks, tilings = run_pipeline(tool, tmp, module, a.target, a.dtype)
    k = next(k for k in ks if k["kernel"].startswith("attention"))
    util = k["utilisation"]
    splits = tilings.get(k["kernel"], {}).get("splitKV", 1)
    row = {"phase": phase, "variant": name, "context": ctx, "seconds": k["seconds"], "bound": k["bound"],
           "gm_bytes": k["gm_bytes"], "non_ring_gm_bytes": k["gm_bytes"] - k["workspace_bytes"],
           "ring_bytes": k["workspace_bytes"], "roofline_seconds": k["roofline_seconds"],
           "cores": k["cores"], "kv_splits": splits, "utilisation": util}
    print("%-14s %6d %9.1f %6s %9.1f %9.1f %9.1f %6d   cube %4.1f%%  vec %4.1f%%  mte2 %4.1f%%" % (
        name, ctx, k["seconds"] * 1e6, k["bound"], row["non_ring_gm_bytes"] / 1e6, row["ring_bytes"] / 1e6,
        k["roofline_seconds"] * 1e6, splits, 100 * util.get("m", 0), 100 * util.get("v", 0),
        100 * util.get("mte2", 0)))
    return row


def variants(ctx, window):
    g = HEADS // KV_HEADS
    return [
        # name, module, KV cache bytes per token per layer (bf16)
        ("GQA", attention_module(BATCH * KV_HEADS, g, HEAD_DIM, ctx, HEAD_DIM), 2 * KV_HEADS * HEAD_DIM * 2),
        ("MLA", attention_module(BATCH, HEADS, LORA + ROPE, ctx, LORA), (LORA + ROPE) * 2),
        ("GateSWA W=%d" % window, attention_module(BATCH * KV_HEADS, g, HEAD_DIM, min(ctx, window), HEAD_DIM),
         2 * KV_HEADS * HEAD_DIM * 2),
    ]


def main():
    cli.stop_on_sigterm()
    ap = argparse.ArgumentParser(description=cli.description(__doc__))
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), type=cli.build_dir,
                    help=cli.BUILD_HELP)
    ap.add_argument("--target", default="910b")
    ap.add_argument("--dtype", default="bf16", help="GEMM operand type: bf16, or f16 (the 910a has no bf16 Cube)")
    ap.add_argument("--window", type=cli.positive_int, default=1024)
    ap.add_argument("--prefill", type=int, default=4096, help="prefill tokens (0: skip)")
    ap.add_argument("--out", help=cli.OUT_HELP)
    a = ap.parse_args()
    a.out = a.out or cli.results_path(ap, a, "ascend_decode_attention")
    tool = os.path.join(a.build, "bin", "attnedit-opt")
    rows = []
    print("%s, decode batch %d, one layer of Qwen3-8B's shape (32 q heads, 8 KV heads, d 128)" % (a.target, BATCH))
    print("%-14s %6s %12s %11s %11s %11s %9s %11s" % (
        "variant", "ctx", "KV B/token", "scores us", "softmax us", "PV us", "total us", "GM MB"))
    with tempfile.TemporaryDirectory() as tmp:
        for ctx in (4096, 32768):
            for name, module, kv_bytes in variants(ctx, a.window):
                src, rep = os.path.join(tmp, "a.mlir"), os.path.join(tmp, "r.json")
                open(src, "w").write(module)
                done = subprocess.run([tool, src, "-o", os.devnull,
                                       "--attnedit-ascend-pipeline=target=%s dtype=%s report=%s" % (a.target, a.dtype, rep)],
                                      capture_output=True, text=True)
                if done.returncode:
                    sys.exit("attnedit-opt failed:\n" + done.stderr)
                ks = json.load(open(rep))["kernels"]
                by = {k["kernel"]: k for k in ks}
                scores, soft, pv = by["matmul_0"], next(k for k in ks if k["kernel"].startswith("softmax")), by["matmul_1"]
                total = scores["seconds"] + soft["seconds"] + pv["seconds"]
                gm = sum(k["gm_bytes"] for k in ks)
                row = {"variant": name, "context": ctx, "kv_bytes_per_token": kv_bytes,
                       "scores_seconds": scores["seconds"], "softmax_seconds": soft["seconds"],
                       "pv_seconds": pv["seconds"], "seconds": total, "gm_bytes": gm,
                       "bounds": [scores["bound"], soft["bound"], pv["bound"]]}
                rows.append(row)
                print("%-14s %6d %12d %11.1f %11.1f %11.1f %9.1f %11.1f" % (
                    name, ctx, kv_bytes, scores["seconds"] * 1e6, soft["seconds"] * 1e6, pv["seconds"] * 1e6,
                    total * 1e6, gm / 1e6))
        fused = []
        head = "%-14s %6s %9s %6s %9s %9s %9s %6s   utilisation" % (
            "variant", "ctx", "fused us", "bound", "GM MB", "ring MB", "roof us", "splits")
        print("\nfused flash-attention mix kernel, decode batch %d" % BATCH)
        print(head)
        for ctx in (4096, 32768):
            for name, module in fused_variants(ctx, a.window):
                fused.append(fused_row(tool, tmp, a, name, module, "decode", ctx))
        if a.prefill:
            print("\nfused flash-attention mix kernel, prefill %d tokens of one sequence" % a.prefill)
            print(head)
            for name, module in prefill_variants(a.prefill, a.window):
                fused.append(fused_row(tool, tmp, a, name, module, "prefill", a.prefill))
    cli.write_json(a.out, {"target": a.target, "batch": BATCH, "window": a.window,
                           "prefill_tokens": a.prefill, "rows": rows, "fused": fused}, 1)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
