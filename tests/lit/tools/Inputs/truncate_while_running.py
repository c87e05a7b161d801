"""Truncates a file a running command reads: starts COMMAND, waits for STATE
(a file it writes while working) to appear, truncates FILE to SIZE bytes,
then waits for COMMAND, prints its stderr and exits with its status.

usage: truncate_while_running.py STATE FILE SIZE -- COMMAND ...
"""
import os
import subprocess
import sys
import tempfile

from busy_until import start_until

state, path, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
command = sys.argv[sys.argv.index("--") + 1:]
with tempfile.TemporaryFile() as err:
    proc = start_until(command, state, stderr=err)
    os.truncate(path, size)
    try:
        proc.wait(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        sys.exit("the command ran on for 300 s with its file truncated")
    err.seek(0)
    sys.stderr.write(err.read().decode(errors="replace"))
sys.exit(proc.returncode)
