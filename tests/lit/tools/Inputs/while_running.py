"""Runs a second command while a first one is busy: starts FIRST, waits for
STATE (a file it writes while working) to appear, runs SECOND to its end,
then kills FIRST with SIGKILL and exits with SECOND's status.

usage: while_running.py STATE -- FIRST ... -- SECOND ...
"""
import os
import signal
import subprocess
import sys
import time

split = [i for i, a in enumerate(sys.argv) if a == "--"]
state = sys.argv[1]
first = sys.argv[split[0] + 1:split[1]]
second = sys.argv[split[1] + 1:]

# FIRST at the lowest priority, so that it is still busy when SECOND runs.
proc = subprocess.Popen(first, stderr=subprocess.DEVNULL, preexec_fn=lambda: os.nice(19))
deadline = time.time() + 300
while not os.path.exists(state):
    if proc.poll() is not None:
        sys.exit(f"the first command ended (exit {proc.returncode}) before writing {state}")
    if time.time() > deadline:
        proc.kill()
        sys.exit(f"no {state} after 300 s")
    time.sleep(0.01)
result = subprocess.run(second)
busy = proc.poll() is None
os.kill(proc.pid, signal.SIGKILL)
proc.wait()
if not busy:
    sys.exit("the first command ended before the second did; the test proves nothing")
sys.exit(result.returncode)
