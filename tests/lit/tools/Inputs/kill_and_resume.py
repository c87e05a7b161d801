"""Runs a training command, kills it with SIGKILL as soon as its first
checkpoint is on disk, checks that it had not finished, then reruns it with
--resume to completion.

usage: kill_and_resume.py OUT_DIR -- attnedit-run distill ... --out OUT_DIR
"""
import os
import signal
import subprocess
import sys
import time

out = sys.argv[1]
command = sys.argv[sys.argv.index("--") + 1:]
state = os.path.join(out, "work", "checkpoint.json")

proc = subprocess.Popen(command, stderr=subprocess.DEVNULL)
deadline = time.time() + 300
while not os.path.exists(state):
    if proc.poll() is not None:
        sys.exit(f"the run ended (exit {proc.returncode}) before writing a checkpoint")
    if time.time() > deadline:
        proc.kill()
        sys.exit("no checkpoint after 300 s")
    time.sleep(0.01)
os.kill(proc.pid, signal.SIGKILL)
proc.wait()
if os.path.exists(os.path.join(out, "config.json")):
    sys.exit("the run finished before it was killed; the test proves nothing")
print("killed after the first checkpoint")

resumed = subprocess.run(command + ["--resume"], stderr=subprocess.PIPE, text=True)
sys.stderr.write(resumed.stderr)
sys.exit(resumed.returncode)
