#!/usr/bin/python3
"""Prefill (forward of T tokens) on the compiled CPU backend, the reference
evaluator and PyTorch, beside the machine's limits, from one run.

    /usr/bin/python3 bench/cpu_backend.py [--build build] [--shape small|medium]
        [--tokens 512] [--out bench/results/cpu_backend.json]

Shapes (issue 10): small = vocab 8192, hidden 256, 6 layers, 8 heads / 4 KV
heads, intermediate 688; medium = vocab 32000, hidden 768, 12 layers, 12 / 4
heads, intermediate 2048. Weights are random (timing does not depend on them).
attnedit-bench-cpu (bench/cpu_forward.cpp) times attnedit and measures the
sgemm rate and the AVX-512 FMA peak; PyTorch (Debian python3-torch, f32,
all cores) runs the same forward (tests/e2e/torch_reference.py) twice: as
installed, and with OPENBLAS_CORETYPE=SkylakeX.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

SHAPES = {
    "small": dict(vocab=8192, dim=256, layers=6, heads=8, kv_heads=4, inter=688),
    "medium": dict(vocab=32000, dim=768, layers=12, heads=12, kv_heads=4, inter=2048),
}

TORCH_SNIPPET = r"""
import sys, time, torch
sys.path.insert(0, {e2e!r})
import torch_reference as ref
torch.set_num_threads({threads})
m = ref.load_model({model!r})
tokens = [(i * 7919 + 1) % {vocab} for i in range({tokens})]
with torch.no_grad():
    ref.forward(m, tokens)
    times = []
    for _ in range(3):
        t = time.perf_counter(); ref.forward(m, tokens); times.append(time.perf_counter() - t)
print(sorted(times)[1])
"""


def make_model(out_dir, s):
    import numpy as np  # noqa: F401  (make_models needs it)
    import make_models
    config = dict(make_models.LLAMA, hidden_size=s["dim"], intermediate_size=s["inter"],
                  num_hidden_layers=s["layers"], num_attention_heads=s["heads"],
                  num_key_value_heads=s["kv_heads"], vocab_size=s["vocab"],
                  tie_word_embeddings=False, max_position_embeddings=4096)
    w = make_models.random_weights(5, s["dim"], s["inter"], s["layers"], s["heads"],
                                   s["kv_heads"], s["dim"] // s["heads"], s["vocab"], False)
    make_models.write_hf(out_dir, config, w, "float32")
    return out_dir


def torch_forward(model, s, tokens, threads, coretype):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    code = TORCH_SNIPPET.format(e2e=os.path.join(HERE, "..", "tests", "e2e"), threads=threads,
                                model=model, vocab=s["vocab"], tokens=tokens)
    p = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True, env=env)
    if p.returncode:
        return None
    return float(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--shape", choices=SHAPES, default="small")
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    s = SHAPES[args.shape]
    with tempfile.TemporaryDirectory() as tmp:
        model = make_model(os.path.join(tmp, "model"), s)
        p = subprocess.run([os.path.join(args.build, "bin", "attnedit-bench-cpu"), model,
                            "--tokens", str(args.tokens)], capture_output=True, text=True)
        if p.returncode:
            sys.exit("attnedit-bench-cpu failed:\n" + p.stderr)
        r = json.loads(p.stdout)
        threads = r["threads"]
        r["torch_installed_s"] = torch_forward(model, s, args.tokens, threads, None)
        r["torch_skylakex_s"] = torch_forward(model, s, args.tokens, threads, "SkylakeX")
    r["shape"] = args.shape
    gflop = r["gemm_gflop_per_forward"]
    rows = [("attnedit cpu (compiled)", r["cpu_forward_s"]),
            ("attnedit reference", r["reference_forward_s"]),
            ("PyTorch as installed", r["torch_installed_s"]),
            ("PyTorch OPENBLAS_CORETYPE=SkylakeX", r["torch_skylakex_s"])]
    print(f"prefill {args.tokens} tokens, {args.shape} Llama ({gflop:.2f} GEMM GFLOP), "
          f"{threads} threads, OpenBLAS kernel for attnedit: {r['openblas_coretype'] or 'auto'}")
    print(f"{'':38s} {'ms':>9s} {'tok/s':>9s} {'GFLOP/s':>9s} {'% FMA peak':>10s}")
    peak = r["fma_peak_gflops_all"]
    for name, t in rows:
        if t is None:
            print(f"{name:38s} {'n/a':>9s}")
            continue
        print(f"{name:38s} {t * 1e3:9.1f} {args.tokens / t:9.0f} {gflop / t:9.1f} "
              f"{100 * gflop / t / peak:9.1f}%")
    print(f"machine: FMA peak {r['fma_peak_gflops_1thread']:.0f} GFLOP/s (1 thread), "
          f"{peak:.0f} ({threads} threads); sgemm 2048³ {r['sgemm_2048_gflops']:.0f} GFLOP/s; "
          f"first compiled call (JIT compile + run) {r['cpu_first_call_s']:.2f} s")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(r, f, indent=1)


if __name__ == "__main__":
    main()
