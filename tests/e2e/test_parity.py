"""Parity of attnedit's tools against the float64 PyTorch reference.

    /usr/bin/python3 tests/e2e/test_parity.py --bin-dir BUILD/bin --work-dir TMPDIR

For every model make_models.py writes, checks:
  (a) attnedit-run forward MODEL --tokens ... --logits-out OUT.npy
  (b) attnedit-import MODEL -o M.mlir, then attnedit-run forward M.mlir ...
  (c) attnedit-run generate MODEL --tokens ... --max-tokens N --temperature 0,
      whose stdout line "ids: a,b,c" must equal the reference greedy ids.
Exits 77 (ctest's skip code) without python3-torch, else 0 iff all pass.
"""
import argparse
import os
import subprocess
import sys

try:
    import numpy as np
    import torch  # noqa: F401  (the reference needs it; checked here to skip cleanly)
except ImportError:
    print("SKIP: python3-torch not installed (Debian package python3-torch)")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_models  # noqa: E402
import torch_reference as ref  # noqa: E402

REL_TOL = 1e-4  # float32 runtime vs float64 reference, relative to max |logit|
TIMEOUT = 300


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def report(self, ok, what, detail):
        print(f"{'PASS' if ok else 'FAIL'} {what}: {detail}", flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1


def run(argv):
    """Runs a tool; returns (stdout, None) or (None, why it failed)."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"{' '.join(argv)}: {e}"
    if p.returncode != 0:
        return None, f"{' '.join(argv)} exited {p.returncode}: {p.stderr.strip()}"
    return p.stdout, None


def check_logits(checks, what, tool, model, out, expected):
    tokens = ",".join(map(str, make_models.FORWARD_TOKENS))
    if os.path.exists(out):  # a stale file from an earlier run must not pass
        os.remove(out)
    _, err = run([tool, "forward", model, "--tokens", tokens, "--logits-out", out])
    if err:
        return checks.report(False, what, err)
    try:
        got = np.load(out)
    except (OSError, ValueError) as e:
        return checks.report(False, what, f"cannot read {out}: {e}")
    if got.dtype != np.float32 or got.shape != expected.shape:
        return checks.report(False, what, f"got {got.dtype}{list(got.shape)}, "
                                          f"want float32{list(expected.shape)}")
    rel = ref.rel_error(got, expected)
    checks.report(rel <= REL_TOL, what, f"max rel err {rel:.2e} (tol {REL_TOL:.0e})")


def check_generate(checks, what, tool, model, m):
    margins = []
    want = ref.greedy(m, make_models.GEN_PROMPT, make_models.GEN_MAX_TOKENS, margins)
    out, err = run([tool, "generate", model,
                    "--tokens", ",".join(map(str, make_models.GEN_PROMPT)),
                    "--max-tokens", str(make_models.GEN_MAX_TOKENS), "--temperature", "0"])
    if err:
        return checks.report(False, what, err)
    lines = [l for l in out.splitlines() if l.startswith("ids:")]
    if len(lines) != 1:
        return checks.report(False, what, f"want one 'ids: ' line in stdout, got {out!r}")
    try:
        text = lines[0][len("ids:"):].strip()
        got = [int(t) for t in text.split(",")] if text else []
    except ValueError:
        return checks.report(False, what, f"unparsable {lines[0]!r}")
    if got == want:
        return checks.report(True, what, f"{len(got)} ids {got}")
    step = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    margin = f", reference top-2 margin there {margins[step]:.2e}" if step < len(margins) else ""
    checks.report(False, what, f"got {got}, want {want} (first difference at step {step}{margin})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--work-dir", required=True)
    args = ap.parse_args()
    run_tool = os.path.join(args.bin_dir, "attnedit-run")
    import_tool = os.path.join(args.bin_dir, "attnedit-import")
    out_dir = os.path.join(args.work_dir, "out")
    os.makedirs(out_dir, exist_ok=True)

    checks = Checks()
    for name, path in make_models.make_all(os.path.join(args.work_dir, "models")):
        m = ref.load_model(path)
        expected = ref.forward(m, make_models.FORWARD_TOKENS).numpy()
        base = os.path.join(out_dir, name)
        check_logits(checks, f"{name} forward", run_tool, path, base + ".npy", expected)

        mlir = base + ".mlir"
        _, err = run([import_tool, path, "-o", mlir])
        if err:
            checks.report(False, f"{name} import+forward", err)
        else:
            check_logits(checks, f"{name} import+forward", run_tool, mlir,
                         base + ".mlir.npy", expected)

        check_generate(checks, f"{name} generate", run_tool, path, m)

    print(f"{checks.passed} passed, {checks.failed} failed")
    return 0 if checks.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
