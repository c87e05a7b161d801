"""Runs a second command while a first one is busy: starts FIRST, waits for
STATE (a file it writes while working) to appear, runs SECOND to its end,
then kills FIRST with SIGKILL and exits with SECOND's status.

usage: while_running.py STATE -- FIRST ... -- SECOND ...
"""
import os
import signal
import subprocess
import sys

from busy_until import start_until

split = [i for i, a in enumerate(sys.argv) if a == "--"]
state = sys.argv[1]
first = sys.argv[split[0] + 1:split[1]]
second = sys.argv[split[1] + 1:]

proc = start_until(first, state, "the first command")
result = subprocess.run(second)
busy = proc.poll() is None
os.kill(proc.pid, signal.SIGKILL)
proc.wait()
if not busy:
    sys.exit("the first command ended before the second did; the test proves nothing")
sys.exit(result.returncode)
