"""Runs a long command, kills it with SIGKILL as soon as its first
checkpoint is on disk, checks that it had not finished, then reruns it with
--resume to completion.

usage: kill_and_resume.py [--kill-only] CHECKPOINT FINISHED -- attnedit-run COMMAND ...
  CHECKPOINT: the file whose appearance means a checkpoint was written;
  FINISHED: a file only a completed run leaves;
  --kill-only: leave the killed run's checkpoint for the test to try.
"""
import os
import signal
import subprocess
import sys

from busy_until import start_until

args = sys.argv[1:sys.argv.index("--")]
kill_only = "--kill-only" in args
state, finished = [a for a in args if a != "--kill-only"]
command = sys.argv[sys.argv.index("--") + 1:]

proc = start_until(command, state, "the run")
os.kill(proc.pid, signal.SIGKILL)
proc.wait()
if os.path.exists(finished):
    sys.exit("the run finished before it was killed; the test proves nothing")
print("killed after the first checkpoint")
if kill_only:
    sys.exit(0)

resumed = subprocess.run(command + ["--resume"], stderr=subprocess.PIPE, text=True)
sys.stderr.write(resumed.stderr)
sys.exit(resumed.returncode)
