#!/usr/bin/python3
"""Modelled Ascend decode-attention time and GM bytes: GQA vs MLA vs GateSWA.

One decode step (one new token per sequence, batch 32) of one attention layer
of Qwen3-8B's shape, at 4K and 32K tokens of context, for
  - GQA: 32 query heads over 8 KV heads of 128 (the base model);
  - MLA: absorbed decode over a latent cache of kv_lora_rank 512 plus a
    64-wide RoPE key (DeepSeek-V2's sizes), 32 heads;
  - GateSWA: GQA on a sliding-window layer that keeps the last W tokens.
Each is lowered unfused, as the Ascend pipeline does today: scores
(Cube matmul, --attnedit-ascend-lower-matmul), softmax over the context
(Vector kernel), weighted sum (Cube matmul); the K cache is read in a
[D, ctx] layout. Times come from the cost model (bench/ascend_layer.py
explains the columns); bytes are all GM transfers of the kernels.

    bench/ascend_decode_attention.py [--build build] [--target 910b] [--dtype bf16] [--window 1024]
                                     [--out bench/results/ascend_decode_attention.json]

Flash-style fused kernels (S and P kept out of GM) are not lowered yet, so the
scores and probabilities make a GM round trip here; the comparison between
variants is what this measures.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

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
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--target", default="910b")
    ap.add_argument("--dtype", default="bf16", help="GEMM operand type: bf16, or f16 (the 910a has no bf16 Cube)")
    ap.add_argument("--window", type=int, default=1024)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "ascend_decode_attention.json"))
    a = ap.parse_args()
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
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    json.dump({"target": a.target, "batch": BATCH, "window": a.window, "rows": rows}, open(a.out, "w"), indent=1)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
