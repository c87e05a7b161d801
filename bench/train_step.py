#!/usr/bin/python3
"""Training step (forward + backward + AdamW, next-token loss) on the compiled
CPU backend, the reference evaluator and PyTorch, beside the machine's limits,
from one run.

    /usr/bin/python3 bench/train_step.py [--build build] [--shape small|medium]
        [--steps 8] [--rounds 3] [--out bench/results/train_step.json]

Shapes (issue 10): small = bench/cpu_backend.py's small Llama, batch 8 x 256
tokens; medium = its medium Llama, batch 1 x 512 tokens. Weights and token ids
are random (timing does not depend on them). attnedit: `attnedit-run train
--backend=cpu|reference` for --steps steps, the recipe's "lanes" set to the
threads (one packed lane per core); its figure is the median
tokens_per_s of training_log.json over the steps after the first 2 (the
first compiles). PyTorch (Debian python3-torch 1.13, f32, the same threads,
passive OpenMP waiting): the same model and step written for speed
(TORCH_SNIPPET: the batch as one [B, T] tensor, fused AdamW off as 1.13 has
none on CPU, global-norm clipping at 1 as attnedit's recipe), run as
installed and with OPENBLAS_CORETYPE=SkylakeX. Rounds interleave attnedit
cpu, reference, PyTorch, PyTorch SkylakeX; medians over rounds. The FMA peak
and sgemm rate come from attnedit-bench-cpu at the start of every round; the
highest of the rounds is the denominator (this VM's speed drifts by up to a
third over minutes, and its fastest phase is the conservative limit).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cpu_backend  # noqa: E402  (the shapes and the model writer)
import cli  # noqa: E402  (bench/cli.py: the shared argument types)

BATCH = {"small": (8, 256), "medium": (1, 512)}

TORCH_SNIPPET = r"""
import math, time, torch
import torch.nn.functional as F
torch.manual_seed(0)
torch.set_num_threads({threads})
V, D, L, H, KV, I = {vocab}, {dim}, {layers}, {heads}, {kv_heads}, {inter}
B, T, HD = {batch}, {seq}, {dim} // {heads}
def w(*shape):
    return (torch.randn(*shape) * 0.02).requires_grad_()
def ones(n):
    return torch.ones(n).requires_grad_()
embed, head, final = w(V, D), w(V, D), ones(D)
layers = [dict(n1=ones(D), q=w(H * HD, D), k=w(KV * HD, D), v=w(KV * HD, D), o=w(D, H * HD),
               n2=ones(D), g=w(I, D), u=w(I, D), d=w(D, I)) for _ in range(L)]
params = [embed, head, final] + [t for l in layers for t in l.values()]
inv = 1.0 / (10000.0 ** (torch.arange(0, HD, 2, dtype=torch.float64) / HD))
ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
cos, sin = ang.cos().float(), ang.sin().float()
future = torch.ones(T, T, dtype=torch.bool).triu(1)
def norm(x, g):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * g
def rope(x):  # [B, heads, T, HD]
    a, b = x[..., :HD // 2], x[..., HD // 2:]
    return torch.cat((a * cos - b * sin, b * cos + a * sin), -1)
def forward(ids):
    x = embed[ids]
    for l in layers:
        h = norm(x, l["n1"])
        q = rope((h @ l["q"].T).view(B, T, H, HD).transpose(1, 2))
        k = rope((h @ l["k"].T).view(B, T, KV, HD).transpose(1, 2))
        v = (h @ l["v"].T).view(B, T, KV, HD).transpose(1, 2)
        k, v = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)
        s = (q @ k.transpose(-1, -2)) * (1 / math.sqrt(HD))
        p = s.masked_fill(future, float("-inf")).softmax(-1)
        x = x + (p @ v).transpose(1, 2).reshape(B, T, H * HD) @ l["o"].T
        h = norm(x, l["n2"])
        x = x + (F.silu(h @ l["g"].T) * (h @ l["u"].T)) @ l["d"].T
    return norm(x, final) @ head.T
opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
ids = torch.randint(0, V, (B, T + 1))
def step():
    logits = forward(ids[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, V), ids[:, 1:].reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
for _ in range(2):
    step()
times = []
for _ in range(5):
    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
print(sorted(times)[2])
"""


def torch_step(s, batch, seq, threads, coretype):
    env = cpu_backend.torch_env(coretype)
    code = TORCH_SNIPPET.format(threads=threads, batch=batch, seq=seq, **s)
    p = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True, env=env)
    if p.returncode:
        print("PyTorch failed:", p.stderr.strip().splitlines()[-1:], file=sys.stderr)
        return None
    return batch * seq / float(p.stdout.strip().splitlines()[-1])


def attnedit_step(build, model_dir, data, recipe, out, backend):
    p = subprocess.run([os.path.join(build, "bin", "attnedit-run"), "train", "--config",
                        os.path.join(model_dir, "config.json"), "--data", data, "--recipe",
                        recipe, "--out", out, "--backend=" + backend],
                       capture_output=True, text=True)
    if p.returncode:
        sys.exit(f"attnedit-run train --backend={backend} failed:\n{p.stderr}")
    with open(os.path.join(out, "training_log.json")) as f:
        points = json.load(f)["stages"][0]["steps"]
    rates = [x["tokens_per_s"] for x in points]
    return statistics.median(rates[2:])


def main():
    cli.stop_on_sigterm()
    ap = argparse.ArgumentParser(description=cli.description(__doc__))
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"), type=cli.build_dir,
                    help=cli.BUILD_HELP)
    ap.add_argument("--shape", choices=cpu_backend.SHAPES, default="small")
    ap.add_argument("--steps", type=cli.steps_past_warmup, default=8)
    ap.add_argument("--rounds", type=cli.positive_int, default=3)
    ap.add_argument("--out", help=cli.OUT_HELP)
    args = ap.parse_args()
    args.out = args.out or cli.results_path(ap, args, "train_step")
    s = cpu_backend.SHAPES[args.shape]
    batch, seq = BATCH[args.shape]
    import numpy as np
    rows = {k: [] for k in ("cpu", "reference", "torch", "torch_skylakex")}
    with tempfile.TemporaryDirectory() as tmp:
        model = cpu_backend.make_model(os.path.join(tmp, "model"), s)
        machines = [cpu_backend.machine_limits(args.build)]
        threads = machines[0]["threads"]
        data = os.path.join(tmp, "ids.bin")
        np.random.default_rng(0).integers(0, s["vocab"], 400_000).astype("<u2").tofile(data)
        recipe = os.path.join(tmp, "recipe.json")
        with open(recipe, "w") as f:
            # One lane per core: each core runs its sequences as one packed
            # call with single-threaded GEMMs (small step: 2860-3420 tok/s
            # against 2480-3150 with the default 4 lanes on 2 cores).
            json.dump({"seed": 0, "batch": batch, "seq_len": seq, "checkpoint_every": 1000,
                       "lanes": max(1, min(threads, batch)),
                       "stages": [{"stage": "lm", "steps": args.steps, "lr": 1e-3}]}, f)
        for r in range(args.rounds):
            if r:
                machines.append(cpu_backend.machine_limits(args.build))
            for backend in ("cpu", "reference"):
                rows[backend].append(attnedit_step(args.build, model, data, recipe,
                                                   os.path.join(tmp, f"out-{backend}-{r}"),
                                                   backend))
            rows["torch"].append(torch_step(s, batch, seq, threads, None))
            rows["torch_skylakex"].append(torch_step(s, batch, seq, threads, "SkylakeX"))
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in rows.items()
                                                 if v[-1] is not None), flush=True)
    med = {k: statistics.median([x for x in v if x is not None]) if any(v) else None
           for k, v in rows.items()}
    # Training FLOPs per token: 6 per weight of every GEMM (forward and two
    # backward products) plus attention's score and value products
    # (causal: half the T x T square), forward and backward.
    d, hd = s["dim"], s["dim"] // s["heads"]
    weights = s["layers"] * (2 * d * d + 2 * d * s["kv_heads"] * hd + 3 * d * s["inter"]) \
        + s["vocab"] * d
    flop = 6 * weights + 3 * s["layers"] * 2 * seq * d
    best = cpu_backend.machine_best(machines)
    peak, sgemm = best["fma_peak_gflops_all"], best["sgemm_2048_gflops"]
    openblas_sgemm = best["openblas_sgemm_2048_gflops"]
    names = [("attnedit cpu (compiled)", "cpu"), ("attnedit reference", "reference"),
             ("PyTorch as installed", "torch"),
             ("PyTorch OPENBLAS_CORETYPE=SkylakeX", "torch_skylakex")]
    print(f"training step, {args.shape} Llama, {batch} x {seq} tokens, {flop / 1e6:.1f} MFLOP "
          f"per token, medians of {args.rounds} interleaved rounds, {threads} threads")
    print(f"{'':38s} {'tok/s':>9s} {'GFLOP/s':>9s} {'% FMA peak':>10s} {'cpu vs':>8s}")
    for name, key in names:
        t = med[key]
        if t is None:
            print(f"{name:38s} {'n/a':>9s}")
            continue
        print(f"{name:38s} {t:9.0f} {t * flop / 1e9:9.1f} {100 * t * flop / 1e9 / peak:9.1f}% "
              f"{med['cpu'] / t:7.2f}x")
    print(f"machine: FMA peak {peak:.0f} GFLOP/s ({threads} threads; the best of the rounds' "
          + ", ".join(f"{m['fma_peak_gflops_all']:.0f}" for m in machines)
          + f"); sgemm 2048³ {sgemm:.0f} GFLOP/s (OpenBLAS {openblas_sgemm:.0f})")
    cli.write_json(args.out, {"shape": args.shape, "batch": batch, "seq_len": seq,
                              "threads": threads, "flop_per_token": flop,
                              "fma_peak_gflops": peak, "sgemm_2048_gflops": sgemm,
                              "openblas_sgemm_2048_gflops": openblas_sgemm,
                              "machine_rounds": machines, "tokens_per_s_median": med,
                              "tokens_per_s_rounds": rows}, 1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
