#!/usr/bin/python3
"""Data-parallel distillation across MPI ranks: measured here, modelled at scale.

    /usr/bin/python3 bench/mpi_scaling.py [--build build] [--steps 6] [--rounds 3]
        [--out bench/results/mpi_scaling.json]

Part 1, measured on this machine: `attnedit-run distill` of the embedded
stories260K model to MLA (rank 16, rope 4, svd init; stage 1 layer-wise, then
stage 2 model-level KL with `train: all`), batch 8 x 128 tokens, --steps steps
per stage, for (ranks, threads per rank) in (1,1) (1,2) (2,1) (2,2), and
(2,1) with stage 1 layer-parallel; ranks started by `mpirun --oversubscribe
--bind-to none` (1 rank without mpirun). Per stage: the
median over steps after the first of the job's tokens/s, the slowest rank's
compute tokens/s and the communication share of the step (training_log.json),
the trainable parameters (the stage's log line) and the gradient bytes every
rank sends and receives per step (the lane sum: a reduce-scatter plus an
all-gather, 2 x (N-1)/N x 4 bytes per parameter, ring all-reduce's volume;
layer-parallel: one loss and one norm per tensor, 8 bytes each).
All runs reach the same weights (checked). The machine has 2 cores that other
jobs share, so the configurations run interleaved, --rounds times, and each
row is the median round by job tokens/s (all rounds' figures are in the JSON).

Part 2, a paper model of Qwen3-8B -> MLA distillation on 8, 64 and 512 nodes.
Measured inputs: none of the 8B's compute is measured (it cannot run here);
what comes from part 1 is the communication volume per trainable parameter
(4 bytes of f32 gradient, moved twice) and that our trainer does not overlap
communication with compute (step = compute + communication). Assumed, each
stated in ASSUMED below with its source: the model shape (Qwen3-8B
config.json), the MLA shape, FLOPs per token, node peak and utilisation, the
network's bandwidth and latency, the global batch and the token budget.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEACHER = os.path.join(ROOT, "scripts", "data", "stories260K", "stories260K.bin")
EDIT = "target=mla kv-lora-rank=16 qk-rope-head-dim=4 init=svd"
# (ranks, threads per rank, stage 1's "parallel")
CONFIGS = [(1, 1, "data"), (1, 2, "data"), (2, 1, "data"), (2, 2, "data"), (2, 1, "layers")]

# Everything the paper model assumes (none of it measured here).
ASSUMED = {
    # Qwen3-8B config.json (huggingface.co/Qwen/Qwen3-8B): 36 layers, hidden
    # 4096, 32 query heads, 8 KV heads, head_dim 128, 8.2B parameters.
    "teacher": {"layers": 36, "hidden": 4096, "heads": 32, "kv_heads": 8, "head_dim": 128,
                "parameters": 8.19e9},
    # An MLA student of DeepSeek-V2's per-head shape: latent 512, decoupled
    # RoPE key 64, nope 128, values 128, no query compression.
    "mla": {"kv_lora_rank": 512, "qk_rope_head_dim": 64, "qk_nope_head_dim": 128,
            "v_head_dim": 128},
    # A node: 8 Ascend 910B (Atlas 800T A2); ~300 TFLOP/s dense fp16 matmul
    # each (huawei-csl guidance, shared/research/ascend.md 1.2); 40% of it
    # sustained over a training step (model FLOPs utilisation, assumed).
    "node_peak_flops": 8 * 300e12,
    "mfu": 0.40,
    # Network per node: 8 x 200GE RoCE (Atlas 800T A2), half of the nominal
    # 200 GB/s achieved by the collective; 10 us per message.
    "network": {"name": "8 x 200GE RoCE per node, 100 GB/s achieved, 10 us latency",
                "bandwidth_bytes_per_s": 100e9, "latency_s": 10e-6},
    # Global batch fixed whatever the node count (our trainer's invariant):
    # 1024 sequences of 4096 tokens.
    "global_batch_sequences": 1024,
    "seq_len": 4096,
    # The paper trains on "< 1/1000 of Qwen3's corpus" (shared/research/
    # anchors.md); Qwen3's corpus is 36T tokens (Qwen3 technical report):
    # 36B tokens is the budget's upper bound.
    "token_budget": 36e9,
    "nodes": [8, 64, 512],
}


def run(cmd, env=None):
    started = time.time()
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                          env=env) as proc:
        try:
            _, err = proc.communicate()
        except BaseException:
            # mpirun passes SIGTERM on to its ranks; the SIGKILL subprocess.run
            # sends a command when the driver is stopped would leave them running.
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
    if proc.returncode:
        sys.stderr.write(err)
        sys.exit(f"failed: {' '.join(cmd)}")
    return err, time.time() - started


def measure(args, work):
    data = os.path.join(work, "data.txt")
    with open(os.path.join(ROOT, "README.md"), "rb") as f:
        open(data, "wb").write(f.read(60000))
    recipes = {}
    for parallel in ("data", "layers"):
        recipes[parallel] = os.path.join(work, f"recipe-{parallel}.json")
        json.dump({"seed": 1, "batch": 8, "seq_len": 128, "checkpoint_every": 1000,
                   "stages": [{"stage": "layerwise", "steps": args.steps, "lr": 3e-3,
                               "warmup": 1, "parallel": parallel},
                              {"stage": "model", "steps": args.steps, "lr": 1e-3, "warmup": 1,
                               "train": "all"}]}, open(recipes[parallel], "w"))
    tool = os.path.join(args.build, "bin", "attnedit-run")
    mpirun = shutil.which("mpirun")
    rows, weights = [], {}
    runs = [(k, c) for k in range(args.rounds) for c in CONFIGS]
    for round_, (ranks, threads, parallel) in runs:
        out = os.path.join(work, f"r{round_}-np{ranks}-t{threads}-{parallel}")
        cmd = [tool, "distill", "--teacher", TEACHER, "--edit", EDIT, "--data", data,
               "--recipe", recipes[parallel], "--out", out, "--threads", str(threads)]
        if ranks > 1:
            if not mpirun:
                print(f"skipped {ranks} ranks: no mpirun (Debian: openmpi-bin)")
                continue
            cmd = [mpirun, "-np", str(ranks), "--oversubscribe", "--bind-to", "none"] + (
                ["--allow-run-as-root"] if os.geteuid() == 0 else []) + cmd
        log, seconds = run(cmd)
        params = [int(p) for p in re.findall(r"trainable tensors, (\d+) parameters", log)]
        curves = json.load(open(os.path.join(out, "training_log.json")))["stages"]
        weights[(ranks, threads, parallel)] = open(os.path.join(out, "model.safetensors"),
                                                   "rb").read()
        tensors = [int(t) for t in re.findall(r"steps from step \d+, (\d+) trainable", log)]
        for k, (stage, count) in enumerate(zip(curves, params)):
            layers = k == 0 and parallel == "layers" and ranks > 1
            moved = (8 * (1 + tensors[k]) * (ranks - 1) if layers
                     else 2 * (ranks - 1) / ranks * 4 * count)
            steps = stage["steps"][1:] or stage["steps"]
            job = statistics.median(p["tokens_per_s"] for p in steps)
            rank = (statistics.median(min(p["rank_tokens_per_s"]) for p in steps)
                    if "rank_tokens_per_s" in steps[0] else job)
            comm = statistics.median(p.get("comm_share", 0.0) for p in steps)
            rows.append({"parallel": parallel, "ranks": ranks, "threads": threads,
                         "stage": stage["stage"] + (" (layers)" if layers else ""),
                         "tokens_per_s": job, "slowest_rank_compute_tokens_per_s": rank,
                         "comm_share": comm, "trainable_parameters": count,
                         "bytes_per_rank_per_step": moved,
                         "job_seconds": seconds})
    first = next(iter(weights.values()))
    identical = all(w == first for w in weights.values())
    runs = {}
    for r in rows:
        runs.setdefault((r["parallel"], r["ranks"], r["threads"], r["stage"]), []).append(r)
    median = []
    for key, same in runs.items():
        same.sort(key=lambda r: r["tokens_per_s"])
        median.append(dict(same[len(same) // 2], rounds_tokens_per_s=[
            round(r["tokens_per_s"]) for r in same]))
    return median, identical


def paper_model():
    a = ASSUMED
    t, m = a["teacher"], a["mla"]
    d, h = t["hidden"], t["heads"]
    # Trainable: each layer's MLA attention (q_proj, kv_a_proj_with_mqa,
    # kv_b_proj, o_proj; norms are negligible).
    per_layer = (d * h * (m["qk_nope_head_dim"] + m["qk_rope_head_dim"])
                 + d * (m["kv_lora_rank"] + m["qk_rope_head_dim"])
                 + m["kv_lora_rank"] * h * (m["qk_nope_head_dim"] + m["v_head_dim"])
                 + h * m["v_head_dim"] * d)
    trainable = per_layer * t["layers"]
    # FLOPs per token of a stage-2 step: teacher forward (2P), student forward
    # (~2P), student backward through every layer for activation gradients
    # (~2P) and weight gradients of the attention only (2 x trainable), plus
    # causal attention scores (teacher + student forward, backward 2x): the
    # usual 6P rule with the frozen weights' gradients left out.
    p = t["parameters"]
    attention = 2 * t["layers"] * a["seq_len"] * h * t["head_dim"]  # QK^T + AV, causal half
    flops_per_token = 6 * p + 2 * trainable + 4 * attention
    gradient_bytes = 4 * trainable
    rows = []
    tokens_per_step = a["global_batch_sequences"] * a["seq_len"]
    for n in a["nodes"]:
        compute = tokens_per_step / n * flops_per_token / (a["node_peak_flops"] * a["mfu"])
        net = a["network"]
        comm = (2 * (n - 1) / n * gradient_bytes / net["bandwidth_bytes_per_s"]
                + 2 * (n - 1) * net["latency_s"])
        step = compute + comm
        rate = tokens_per_step / step
        rows.append({"nodes": n, "sequences_per_node": a["global_batch_sequences"] / n,
                     "compute_s": compute, "comm_s": comm, "step_s": step,
                     "comm_share": comm / step, "tokens_per_s": rate,
                     "days_for_budget": a["token_budget"] / rate / 86400})
    return {"trainable_parameters": trainable, "gradient_bytes": gradient_bytes,
            "flops_per_token": flops_per_token, "rows": rows}


def main():
    cli.stop_on_sigterm()
    parser = argparse.ArgumentParser(description=cli.description(__doc__))
    parser.add_argument("--build", default=os.path.join(ROOT, "build"), type=cli.build_dir,
                        help=cli.BUILD_HELP)
    parser.add_argument("--steps", type=cli.positive_int, default=6)
    parser.add_argument("--rounds", type=cli.positive_int, default=3)
    parser.add_argument("--out", help=cli.OUT_HELP)
    args = parser.parse_args()
    args.out = args.out or cli.results_path(parser, args, "mpi_scaling")
    with tempfile.TemporaryDirectory(prefix="mpi-scaling-") as work:
        rows, identical = measure(args, work)
    print("measured here (stories260K -> MLA, batch 8 x 128 tokens; 2 shared cores):")
    print(f"{'ranks':>5} {'thr':>3} {'stage':<19} {'job tok/s':>9} {'rank tok/s':>10} "
          f"{'comm':>5} {'params':>8} {'bytes/rank/step':>15}")
    for r in rows:
        print(f"{r['ranks']:>5} {r['threads']:>3} {r['stage']:<19} {r['tokens_per_s']:>9.0f} "
              f"{r['slowest_rank_compute_tokens_per_s']:>10.0f} {r['comm_share']:>5.0%} "
              f"{r['trainable_parameters']:>8} {r['bytes_per_rank_per_step']:>15.0f}")
    print(f"weights identical across all configurations: {identical}")
    model = paper_model()
    a = ASSUMED
    print(f"\npaper model: Qwen3-8B -> MLA (r {a['mla']['kv_lora_rank']}), "
          f"{model['trainable_parameters'] / 1e9:.2f}B trainable, "
          f"{model['gradient_bytes'] / 1e9:.1f} GB f32 gradient per step, "
          f"{model['flops_per_token'] / 1e9:.1f} GFLOP/token; global batch "
          f"{a['global_batch_sequences']} x {a['seq_len']} tokens; node 8 x 910B at "
          f"{a['mfu']:.0%} MFU; {a['network']['name']}")
    print(f"{'nodes':>5} {'compute s':>9} {'comm s':>7} {'step s':>7} {'comm':>5} "
          f"{'Mtok/s':>7} {'days/36B tok':>12}")
    for r in model["rows"]:
        print(f"{r['nodes']:>5} {r['compute_s']:>9.2f} {r['comm_s']:>7.3f} {r['step_s']:>7.2f} "
              f"{r['comm_share']:>5.0%} {r['tokens_per_s'] / 1e6:>7.2f} "
              f"{r['days_for_budget']:>12.2f}")
    cli.write_json(args.out, {"measured": rows, "weights_identical": identical,
                              "assumed": ASSUMED, "paper_model": model})
    print(f"wrote {args.out}")
    if not identical:
        sys.exit("weights differ between rank counts")


if __name__ == "__main__":
    main()
