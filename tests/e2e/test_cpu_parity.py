"""The compiled CPU backend against the reference evaluator, whole models.

For every model make_models.py builds (Llama MHA/GQA, Llama 3.1 scaling,
Qwen2, Qwen3, llama2.c shared/unshared), for the same models edited to MLA
(SVD init) and GateSWA (window 4, gates, sinks), and for stories260K when
../shared/data holds it:
  attnedit-run forward --backend=cpu  vs  --backend=reference: 1e-5 relative
  attnedit-run generate (greedy ids)  identical on both backends
  attnedit-run grad (Llama, Qwen3) of the edited models' stage-1 (layer-wise MSE) and
  stage-2 (KL) distillation steps: loss and gradients, 1e-4 relative (to each
  tensor's largest entry, floored at a thousandth of the step's largest gradient)

    python3 test_cpu_parity.py --bin-dir BUILD/bin --work-dir DIR [--shared-data DIR]

Exits 77 (skip) without numpy/torch (make_models.py needs them).
"""
import argparse
import os
import subprocess
import sys

try:
    import numpy as np
    import make_models
except ImportError as e:  # pragma: no cover
    print(f"skipped: {e}")
    sys.exit(77)

TOL = 1e-5
GRAD_TOL = 1e-4
GRAD_MODELS = ("llama", "qwen3")


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.stdout, (p.stderr if p.returncode else "")


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def report(self, ok, what, detail=""):
        print(f"{'PASS' if ok else 'FAIL'}: {what} {detail}", flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1


def check_forward(checks, what, run_tool, model, base, tokens):
    outs = {}
    for backend in ("reference", "cpu"):
        out = f"{base}.{backend}.npy"
        _, err = run([run_tool, "forward", model, "--tokens", ",".join(map(str, tokens)),
                      "--logits-out", out, f"--backend={backend}"])
        if err:
            return checks.report(False, f"{what} forward ({backend})", err.strip())
        outs[backend] = np.load(out)
    a, b = outs["cpu"], outs["reference"]
    if a.shape != b.shape:
        return checks.report(False, f"{what} forward", f"shapes {a.shape} vs {b.shape}")
    rel = float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-30))
    checks.report(rel <= TOL, f"{what} forward", f"max relative difference {rel:.3g}")


def check_generate(checks, what, run_tool, model, prompt, steps):
    ids = {}
    for backend in ("reference", "cpu"):
        out, err = run([run_tool, "generate", model, "--tokens", ",".join(map(str, prompt)),
                        "--max-tokens", str(steps), "--temperature", "0", f"--backend={backend}"])
        if err:
            return checks.report(False, f"{what} generate ({backend})", err.strip())
        ids[backend] = [l for l in out.splitlines() if l.startswith("ids:")]
    checks.report(ids["cpu"] == ids["reference"], f"{what} generate",
                  f"{ids['cpu']} vs {ids['reference']}")


def check_grad(checks, what, run_tool, step, base, tokens):
    dirs = {}
    for backend in ("reference", "cpu"):
        dirs[backend] = f"{base}.grads.{backend}"
        _, err = run([run_tool, "grad", step, "--tokens", ",".join(map(str, tokens)),
                      "--out-dir", dirs[backend], f"--backend={backend}"])
        if err:
            return checks.report(False, f"{what} grad ({backend})", err.strip())
    names = sorted(os.listdir(dirs["reference"]))
    pairs = [(np.load(os.path.join(dirs["cpu"], n)), np.load(os.path.join(dirs["reference"], n)))
             for n in names]
    # Relative to each tensor's largest entry, but never below a thousandth
    # of the step's largest gradient: a GateSWA sink's gradient is ~1e-7
    # where the projections' are ~0.5, and its digits are rounding noise of
    # both backends (compiled exp is libmvec's, within 4 ulp of libm's).
    scale = max(float(np.max(np.abs(b))) for _, b in pairs)
    worst = 0.0
    for a, b in pairs:
        floor = max(float(np.max(np.abs(b))), 1e-3 * scale, 1e-30)
        worst = max(worst, float(np.max(np.abs(a - b))) / floor)
    checks.report(worst <= GRAD_TOL, f"{what} grad",
                  f"loss + {len(names) - 1} gradients, worst relative difference {worst:.3g}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--work-dir", required=True)
    ap.add_argument("--shared-data", default="")
    args = ap.parse_args()
    run_tool = os.path.join(args.bin_dir, "attnedit-run")
    import_tool = os.path.join(args.bin_dir, "attnedit-import")
    opt_tool = os.path.join(args.bin_dir, "attnedit-opt")
    out_dir = os.path.join(args.work_dir, "out")
    os.makedirs(out_dir, exist_ok=True)
    tokens = make_models.FORWARD_TOKENS

    checks = Checks()
    for name, path in make_models.make_all(os.path.join(args.work_dir, "models")):
        base = os.path.join(out_dir, name)
        check_forward(checks, name, run_tool, path, base, tokens)
        check_generate(checks, name, run_tool, path, make_models.GEN_PROMPT,
                       make_models.GEN_MAX_TOKENS)
        # The edited students: composite mla / gate_swa ops, decomposed by
        # the CPU pipeline.
        mlir = base + ".mlir"
        _, err = run([import_tool, path, "-o", mlir])
        if not err:
            _, err = run([opt_tool, mlir, "--attnedit-raise-attention", "-o", base + ".raised.mlir"])
        if err:
            checks.report(False, f"{name} import", err.strip())
            continue
        for edit, options in (("mla", "target=mla kv-lora-rank=16 qk-rope-head-dim=8 init=svd"),
                              ("gate_swa", "target=gate-swa window=4 gate=headwise sinks=true")):
            edited = f"{base}.{edit}.mlir"
            params = f"{base}.{edit}.safetensors"
            _, err = run([opt_tool, mlir, "--attnedit-raise-attention",
                          f"--attnedit-edit-attention={options} params-out={params}",
                          "-o", edited])
            if err:
                checks.report(False, f"{name} {edit} edit", err.strip())
                continue
            check_forward(checks, f"{name} {edit}", run_tool, edited, f"{base}.{edit}", tokens)
            # Distillation steps and their gradients (autodiff's backward ops),
            # on GQA with and without Qwen3's q/k norms (time: each run compiles).
            for stage in ("layerwise", "model") if name in GRAD_MODELS else ():
                step = f"{base}.{edit}.{stage}.mlir"
                _, err = run([opt_tool, edited,
                              f"--attnedit-build-distill=teacher={base}.raised.mlir stage={stage}",
                              "--attnedit-autodiff=func=train_step", "-o", step])
                if err:
                    checks.report(False, f"{name} {edit} {stage} step", err.strip())
                    continue
                check_grad(checks, f"{name} {edit} {stage}", run_tool, step,
                           f"{base}.{edit}.{stage}", tokens[:-1])

    stories = os.path.join(args.shared_data, "stories260K", "stories260K.bin")
    if args.shared_data and os.path.exists(stories):
        check_forward(checks, "stories260K", run_tool, stories, os.path.join(out_dir, "s260K"),
                      list(range(1, 120)))
    else:
        print(f"stories260K skipped: {stories} is absent")

    print(f"{checks.passed} passed, {checks.failed} failed")
    return 0 if checks.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
