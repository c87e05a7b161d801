#!/usr/bin/python3
"""Modelled Ascend time of the GEMMs of one Qwen3-8B-shaped decoder layer.

Lowers the layer's seven projections (q, k, v, o, gate, up, down) with
--attnedit-ascend-pipeline for prefill at 4K tokens and decode at batch 32,
and prints, per op, the cost model's time, bounding pipe, Cube / MTE2
utilisation, fraction of the Cube peak and the roofline time (max of Cube
time at peak and compulsory GM traffic at full HBM bandwidth).

    bench/ascend_layer.py [--build build] [--target 910b] [--out bench/results/ascend_layer.json]

Attention, norms, RoPE and SiLU-mul are not lowered to Ascend kernels yet;
the table says so instead of guessing their time.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "bench", "configs", "qwen3-8b", "config.json")


def layer_module(tokens, cfg):
    d, h, kv, hd, ff = (cfg["hidden_size"], cfg["num_attention_heads"],
                        cfg["num_key_value_heads"], cfg["head_dim"], cfg["intermediate_size"])
    ops = [("q_proj", d, h * hd), ("k_proj", d, kv * hd), ("v_proj", d, kv * hd),
           ("o_proj", h * hd, d), ("gate_proj", d, ff), ("up_proj", d, ff), ("down_proj", ff, d)]
    args, body, results = [], [], []
    for i, (name, k, n) in enumerate(ops):
        args.append("%%x%d: tensor<%dx%dxf32>, %%w%d: tensor<%dx%dxf32>" % (i, tokens, k, i, n, k))
        body.append("  %%y%d = attnedit.linear %%x%d, %%w%d : (tensor<%dx%dxf32>, tensor<%dx%dxf32>)"
                    " -> tensor<%dx%dxf32>" % (i, i, i, tokens, k, n, k, tokens, n))
        results.append(("%%y%d" % i, "tensor<%dx%dxf32>" % (tokens, n)))
    text = "func.func @layer(%s) -> (%s) {\n%s\n  return %s : %s\n}\n" % (
        ", ".join(args), ", ".join(t for _, t in results), "\n".join(body),
        ", ".join(v for v, _ in results), ", ".join(t for _, t in results))
    return text, ops


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--target", default="910b")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "ascend_layer.json"))
    a = ap.parse_args()
    tool = os.path.join(a.build, "bin", "attnedit-opt")
    cfg = json.load(open(CONFIG))
    results = {"target": a.target, "model": "Qwen3-8B layer (bench/configs/qwen3-8b)", "scenarios": []}
    with tempfile.TemporaryDirectory() as tmp:
        for scenario, tokens in (("prefill 4K tokens", 4096), ("decode batch 32", 32)):
            text, ops = layer_module(tokens, cfg)
            src, rep, til = (os.path.join(tmp, f) for f in ("layer.mlir", "report.json", "tiling.json"))
            open(src, "w").write(text)
            start = time.perf_counter()
            done = subprocess.run([tool, src, "-o", os.devnull,
                                   "--attnedit-ascend-pipeline=target=%s report=%s tiling=%s"
                                   % (a.target, rep, til)], capture_output=True, text=True)
            compile_s = time.perf_counter() - start
            if done.returncode:
                sys.exit("attnedit-opt failed:\n" + done.stderr)
            kernels = {k["kernel"]: k for k in json.load(open(rep))["kernels"]}
            tilings = {t["kernel"]: t["TCubeTiling"] for t in json.load(open(til))["tilings"]}
            print("\n%s, %s: %d tokens (compile + tile search %.1f s)" % (a.target, scenario, tokens, compile_s))
            print("%-10s %6s %6s %6s %10s %6s %6s %6s %7s %10s  %s" % (
                "op", "M", "N", "K", "time us", "bound", "cube", "mte2", "peak", "roofline", "tile (baseM,N,K x stepK)"))
            rows, total = [], 0.0
            for i, (name, k, n) in enumerate(ops):
                e, t = kernels["linear_%d" % i], tilings["linear_%d" % i]
                u = e["utilisation"]
                total += e["seconds"]
                row = {"op": name, "M": tokens, "N": n, "K": k, "seconds": e["seconds"], "bound": e["bound"],
                       "cube_utilisation": u.get("m", 0), "mte2_utilisation": u.get("mte2", 0),
                       "cube_peak_fraction": e["cube_peak_fraction"], "roofline_seconds": e["roofline_seconds"],
                       "tiling": t}
                rows.append(row)
                print("%-10s %6d %6d %6d %10.1f %6s %5.0f%% %5.0f%% %6.1f%% %10.1f  %d,%d,%d x%d" % (
                    name, tokens, n, k, e["seconds"] * 1e6, e["bound"], 100 * row["cube_utilisation"],
                    100 * row["mte2_utilisation"], 100 * e["cube_peak_fraction"], e["roofline_seconds"] * 1e6,
                    t["baseM"], t["baseN"], t["baseK"], t["stepKa"]))
            print("%-10s %31.1f us for the seven GEMMs; attention, norms, RoPE, SiLU-mul: not lowered yet"
                  % ("total", total * 1e6))
            results["scenarios"].append({"scenario": scenario, "tokens": tokens, "ops": rows,
                                         "gemm_seconds": total, "compile_seconds": compile_s})
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    json.dump(results, open(a.out, "w"), indent=1)
    print("\nwrote", a.out)


if __name__ == "__main__":
    main()
