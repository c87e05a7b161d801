"""Starts a training command, sends it SIGNAL (INT or TERM) once its first
step is done (its first progress line), and prints its stderr and exit code: the run should finish the
step it is in, write a checkpoint there and stop.

usage: stop_with_signal.py SIGNAL -- attnedit-run COMMAND ...
"""
import os
import re
import signal
import subprocess
import sys
import time

sig = getattr(signal, "SIG" + sys.argv[1])
command = sys.argv[sys.argv.index("--") + 1:]
proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True,
                        preexec_fn=lambda: os.nice(19))
lines = []
for line in proc.stderr:
    lines.append(line)
    if re.search(r" step \d+/\d+ ", line):
        time.sleep(0.3)
        proc.send_signal(sig)
        break
lines += proc.stderr.readlines()
proc.wait(timeout=300)
sys.stdout.write("".join(lines))
print("exit", proc.returncode)
