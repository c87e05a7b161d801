"""Starts a command at the lowest priority and waits until it has written a
file: on a loaded machine (ctest -j beside lit's own workers) the caller
must still find it busy afterwards."""
import os
import subprocess
import sys
import time


def start_until(command, state, what="the command", stderr=subprocess.DEVNULL):
    proc = subprocess.Popen(command, stderr=stderr, preexec_fn=lambda: os.nice(19))
    deadline = time.time() + 300
    while not os.path.exists(state):
        if proc.poll() is not None:
            sys.exit(f"{what} ended (exit {proc.returncode}) before writing {state}")
        if time.time() > deadline:
            proc.kill()
            sys.exit(f"no {state} after 300 s")
        time.sleep(0.01)
    return proc
