"""Compares the loss curves of two distill runs' training_log.json.

Usage: compare_losses.py RUN_A RUN_B [TOLERANCE]; TOLERANCE is relative
(default 1e-5)."""
import json
import os
import sys

logs = [json.load(open(os.path.join(d, "training_log.json")))["stages"] for d in sys.argv[1:3]]
tolerance = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-5
worst = 0.0
steps = 0
for a, b in zip(*logs):
    for x, y in zip(a["steps"], b["steps"]):
        worst = max(worst, abs(x["loss"] - y["loss"]) / abs(y["loss"]))
        steps += 1
verdict = "<=" if worst <= tolerance else ">"
print(f"{len(logs[0])} stages, {steps} steps, largest relative difference {worst:.2e} {verdict} {tolerance:g}")
