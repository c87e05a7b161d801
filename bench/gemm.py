#!/usr/bin/env python3
"""GEMMs of the training steps through the shim compiled code calls (for
these shapes attnedit's packed AVX-512 kernel) against OpenBLAS with its
SkylakeX kernel (what PyTorch and the reference evaluator run), 2 threads.

    python3 bench/gemm.py [--build build] [--rounds 3] [--out bench/results/gemm.json]

Each round measures the machine (`attnedit-bench-cpu --only machine`), then
runs `attnedit-bench-cpu --gemm` (both GEMMs interleaved in one process, best
of up to 50 each; it measures the FMA peak again at its end); the table gives
per shape the median over rounds, their ratio and the share of the highest
FMA peak of all those measurements (a share above 100% is marked: the peak
loops all ran in noisier moments than that GEMM).
"""
import argparse
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cpu_backend  # noqa: E402  (OpenBLAS's best kernel)
import cli  # noqa: E402  (bench/cli.py: the shared argument types)


def main():
    cli.stop_on_sigterm()
    ap = argparse.ArgumentParser(description=cli.description(__doc__))
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"), type=cli.build_dir,
                    help=cli.BUILD_HELP)
    ap.add_argument("--rounds", type=cli.positive_int, default=3)
    ap.add_argument("--out", help=cli.OUT_HELP)
    args = ap.parse_args()
    args.out = args.out or cli.results_path(ap, args, "gemm")
    runs, machines = [], []
    for _ in range(args.rounds):
        # The peak --gemm measures after its shapes alone read below their
        # rates (172% of it) when the VM slowed down meanwhile: a second
        # measurement before them bounds the peak from both sides.
        machines.append(cpu_backend.machine_limits(args.build))
        # OpenBLAS's SkylakeX kernel even where the shell forces another.
        runs.append(cpu_backend.bench_cpu(
            args.build, ["--gemm"], cpu_backend.torch_env(cpu_backend.best_openblas_coretype())))
    peak = max(r["fma_peak_gflops_all"] for r in runs + machines)
    rows = []
    for i, shape in enumerate(runs[0]["gemm"]):
        ours = statistics.median(r["gemm"][i]["attnedit_gflops"] for r in runs)
        theirs = statistics.median(r["gemm"][i]["openblas_gflops"] for r in runs)
        rows.append(dict(shape, attnedit_gflops=ours, openblas_gflops=theirs))
    print(f"GEMM GFLOP/s, {runs[0]['threads']} threads, medians of {args.rounds} rounds; "
          f"FMA peak {peak:.0f} GFLOP/s (the highest of "
          + ", ".join(f"{r['fma_peak_gflops_all']:.0f}" for r in machines + runs) + ")")

    def share(gflops):
        """% of the peak, marked past 100% (see the footnote)."""
        return f"{100 * gflops / peak:6.1f}%" + ("*" if gflops > peak else " ")

    print(f"{'op':3s} {'M×N×K':>18s} {'attnedit':>9s} {'OpenBLAS':>9s} {'ratio':>6s} "
          f"{'% peak':>8s} {'OpenBLAS':>8s}")
    for r in rows:
        shape = f"{r['m']}×{r['n']}×{r['k']}"
        print(f"{r['op']:3s} {shape:>18s} {r['attnedit_gflops']:9.1f} {r['openblas_gflops']:9.1f} "
              f"{r['attnedit_gflops'] / r['openblas_gflops']:6.2f} "
              f"{share(r['attnedit_gflops'])} {share(r['openblas_gflops'])}")
    if any(max(r["attnedit_gflops"], r["openblas_gflops"]) > peak for r in rows):
        print("* above every FMA peak measured: the peak loops ran in noisier moments than "
              "this GEMM")
    ratios = [r["attnedit_gflops"] / r["openblas_gflops"] for r in rows]
    print(f"ratio attnedit / OpenBLAS: median {statistics.median(ratios):.2f}, "
          f"range {min(ratios):.2f}–{max(ratios):.2f}")
    cli.write_json(args.out, {"fma_peak_gflops_all": peak, "gemm": rows, "rounds": runs,
                              "machine_rounds": machines}, 1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
